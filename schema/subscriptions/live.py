"""The pattern every subscription field follows (core's and plugins'):

    @strawberry.subscription
    async def supplies_distribution_changed(self, info: Info) -> AsyncGenerator[SuppliesDistributionChange, None]:
        async for event in live_events(info, {"supplies.distribution"}, plugin="supplies"):
            if event.resync:
                yield SuppliesDistributionChange(resync=True, ...)
                continue
            found = await load(info, event)         # in the event's fresh session, as the subscriber
            if found is not None:
                yield ...

`live_events` subscribes, lets go of the setup's session while waiting, and yields:

- first, once LISTEN is in place, a RESYNC event: the subscription is live from then on, so a client loads
  what it shows (the matching query) after that first message and misses nothing in between;
- then the events of `topics` about the subscriber's own organisation (platform administrators: every
  organisation) that `accept` lets through, each with a fresh session begun with the connection's bearer
  check (a credential revoked meanwhile ends the connection), ended -- audit flushed, session closed --
  before waiting for the next: no database connection is held while a subscription is idle. Another
  organisation's events never reach the subscriber's queue, so they cost it no query and cannot make it
  fall behind.

At most half the pool's connections (settings.db_pool_size // 2, at least 1) are taken by event reloads at
once in a process; more wait their turn (HTTP requests keep the rest). With `plugin`, the subscription ends
(PLUGIN_DISABLED) as soon as the plugin is switched off for the subscriber's organisation.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Iterable

from strawberry import Info

from core import live
from core.errors import DomainError
from core.live import Accept, Event
from core.vocab import Role
from schema.subscriptions.context import LiveContext

# Event reloads at once, per event loop (a process runs one): a burst of events times subscribers waits here
# rather than at the pool, where HTTP requests would wait behind it.
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def reload_slots(context: LiveContext) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(max(1, context.app.settings.db_pool_size // 2))
    return slots


def _once(release: Callable[[], None]) -> Callable[[], None]:
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            release()

    return run


async def live_events(
    info: Info, topics: Iterable[str], *, accept: Accept | None = None, plugin: str | None = None
) -> AsyncIterator[Event]:
    """The events of `topics` the subscriber may be concerned by (`accept`: a check of the routing keys,
    no I/O), after a first RESYNC once listening; each with a fresh session begun for the subscriber (see
    the module's docstring)."""
    context = info.context
    if not isinstance(context, LiveContext):
        raise DomainError("INVALID_REQUEST", "Subscriptions are served over a websocket (graphql-transport-ws).")
    wanted = set(topics)
    organization = context.viewer.organization_id
    # Platform administrators see every organisation's records; everyone else only their own (row-level
    # security would hide the others' anyway: this drops them before any queue or query).
    any_organization = context.viewer.role == Role.PLATFORM_ADMIN.value
    if plugin is not None:
        wanted.add(live.PLUGINS)

    def concerns(event: Event) -> bool:
        if not any_organization and event.organization_id != organization:
            return False
        if event.topic == live.PLUGINS:
            return plugin is not None and event.id == organization and event.get("plugin_name") == plugin
        return accept is None or accept(event)

    # The setup's reads (the plugin gate, checks) are over: let go of the database before waiting for the
    # listener, which may take seconds while it reconnects (a connection held meanwhile would queue HTTP).
    await context.end_event()
    try:
        subscription = await live.subscribe(wanted, accept=concerns)
    except live.LiveUnavailable:
        raise DomainError("UNAVAILABLE", "Live updates are not available for the moment; retry shortly.") from None
    async with subscription:
        # Listening from here on: the client loads what it shows after this, and misses nothing.
        try:
            yield live.RESYNC_EVENT
        finally:
            await context.end_event()
        slots = reload_slots(context)
        async for event in subscription:
            await slots.acquire()
            release = _once(slots.release)
            try:
                await context.begin_event()
                # A transport that ends the event's session before sending the result runs the context's
                # after_event callbacks then, freeing the slot while the client reads; without them it is
                # freed below, once the generator resumes.
                after_event = getattr(context, "after_event", None)
                if isinstance(after_event, list):
                    after_event.append(release)
                if plugin is not None and (event.topic == live.PLUGINS or event.resync):
                    # Still enabled? PLUGIN_DISABLED ends the subscription.
                    await context.require_plugin(plugin)
                    if event.topic == live.PLUGINS:
                        continue
                yield event
            finally:
                # Resumed once what the event produced was delivered (or the subscription is closing).
                try:
                    await context.end_event()
                finally:
                    release()
