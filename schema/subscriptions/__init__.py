"""GraphQL subscriptions over graphql-transport-ws (docs/realtime.md): core's fields, the transport, and the
helper plugin subscription fields use (`live_events`)."""

from schema.subscriptions.context import ConnectionEnded, LiveConnection, LiveContext
from schema.subscriptions.fields import CoreSubscription, LiveChange
from schema.subscriptions.live import live_events

__all__ = ["ConnectionEnded", "CoreSubscription", "LiveChange", "LiveConnection", "LiveContext", "live_events"]
