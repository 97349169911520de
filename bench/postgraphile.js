// PostGraphile 4 as a standalone HTTP server, started by bench/requests_page.py against the benchmark's
// database. Run with NODE_PATH pointing at a folder where `npm install postgraphile@4` put its modules.
//
// Configuration comes from the environment (so no value is ever spliced into code):
//   PGB_PORT      port to listen on (127.0.0.1)
//   PGB_PG        JSON of pg.Pool options (host/port/user/password/database); the pool is capped at 10
//   PGB_SETTINGS  JSON of pgSettings: per-request `set_config(k, v, true)`, as our service sets
//                 app.org_id and app.role for each transaction, so row-level security applies alike.
"use strict";

const http = require("http");
const { Pool } = require("pg");
const { postgraphile } = require("postgraphile");

const pool = new Pool({ ...JSON.parse(process.env.PGB_PG), max: 10 });
const settings = JSON.parse(process.env.PGB_SETTINGS || "{}");

const middleware = postgraphile(pool, "public", {
  // Production-like: no query log on stdout, no GraphiQL, no schema watching.
  disableQueryLog: true,
  graphiql: false,
  watchPg: false,
  retryOnInitFail: false,
  pgSettings: Object.keys(settings).length ? settings : undefined,
});

const server = http.createServer(middleware);
// Servers are alternated: keep idle keep-alive connections open while the others are measured (as the
// benchmark tells uvicorn to).
server.keepAliveTimeout = 600000;
server.headersTimeout = 601000;
server.listen(Number(process.env.PGB_PORT), "127.0.0.1");
