// A subscriber using graphql-ws, the reference client of the graphql-transport-ws protocol (used by
// tests/e2e/test_graphql_ws_client.py).
//
//   node client.mjs <ws-url> <token> <count> [query]
//
// Connects with connectionParams {authorization: "Bearer <token>"}, subscribes (default: helpRequestChanged),
// prints one JSON line per `next` payload, and prints {"ready": true} on stdout once the server acknowledged
// the connection. Exit codes: 0 after <count> payloads; 2 bad arguments; 3 the subscription errored or
// completed early; 4 the connection closed (the close code is printed on stderr as {"closed": code}).
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, countArg, query] = process.argv.slice(2);
const count = Number.parseInt(countArg ?? "", 10);
if (!url || token === undefined || !Number.isInteger(count) || count < 1) {
  console.error("usage: node client.mjs <ws-url> <token> <count> [query]");
  process.exit(2);
}
const QUERY = query ?? "subscription { helpRequestChanged { change request { id title } } }";

const print = (stream, value) => stream.write(`${JSON.stringify(value)}\n`);
let received = 0;
let finished = false;
const finish = (code) => {
  if (finished) return;
  finished = true;
  // Exit once the output is flushed: a piped stdout is asynchronous in Node.
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
};

// CLIENT_TRACE=1: every frame received, raw, on stderr (to debug the protocol).
class TracingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    this.on("message", (data) => print(process.stderr, { received: String(data) }));
  }
}

const client = createClient({
  url,
  webSocketImpl: process.env.CLIENT_TRACE ? TracingWebSocket : WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  lazy: false, // connect now (not at the first subscribe), so "ready" means connection_ack was received
  retryAttempts: 0, // a refused or dropped connection ends the test client with its close code
  on: {
    connected: () => print(process.stdout, { ready: true }),
    closed: (event) => {
      print(process.stderr, { closed: event?.code ?? null, reason: event?.reason ?? "" });
      finish(4);
    },
    error: (error) => {
      print(process.stderr, { error: String(error?.message ?? error) });
    },
  },
});

client.subscribe(
  { query: QUERY },
  {
    next: (payload) => {
      print(process.stdout, payload);
      received += 1;
      if (received >= count) {
        client.dispose();
        finish(0);
      }
    },
    error: (error) => {
      // A CloseEvent (connection closed) is reported by `closed` with its code; anything else ends here.
      if (error && typeof error.code === "number") return;
      print(process.stderr, { error: Array.isArray(error) ? error : String(error?.message ?? error) });
      finish(3);
    },
    complete: () => finish(received >= count ? 0 : 3),
  },
);

// Never hang a test: the test sets its own timeout too.
setTimeout(() => {
  print(process.stderr, { error: "timed out" });
  finish(5);
}, Number.parseInt(process.env.CLIENT_TIMEOUT_MS ?? "60000", 10)).unref();
