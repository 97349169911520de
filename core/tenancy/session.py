"""Telling each transaction who is asking: `set_config(…, true)` from the session's viewer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from core.tenancy.sql import ORG_SETTING, ROLE_SETTING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from core.services.context import Viewer

_VIEWER = "tenancy.viewer"
_APPLIED = "tenancy.applied"


def bind(session: Any, viewer: Viewer) -> None:
    """Make `session`'s transactions act for `viewer` (AsyncSession or Session)."""
    sync = getattr(session, "sync_session", session)
    sync.info[_VIEWER] = viewer


async def rebind(session: Any, viewer: Viewer) -> None:
    """Make `session` act for `viewer` from now on, also inside a transaction already begun (the request
    adopts the session its token was checked on; a no-op when `adopt` recorded the viewer's settings).

    Applied at once, not at the next ORM statement: code that executes on `session.connection()` directly
    (Core, no ORM event) must never run with the previous viewer's settings."""
    bind(session, viewer)
    sync = getattr(session, "sync_session", session)
    if not sync.in_transaction() or sync.info.get(_APPLIED, "unset") is viewer:
        return
    connection = await session.connection()
    await connection.run_sync(lambda conn: _apply(sync, conn))


async def adopt(session: Any, viewer: Viewer, applied: tuple[str, str]) -> None:
    """A statement of the caller's own just set this transaction's settings to `applied` (org, role): the
    bearer check reads the account and sets its settings in one statement. Make `session` act for `viewer`
    from now on without applying them again -- unless `viewer` needs other settings than those (then they
    are applied now: never a statement with settings other than the viewer's)."""
    bind(session, viewer)
    sync = getattr(session, "sync_session", session)
    if sync.in_transaction() and settings_for(viewer) == applied:
        sync.info[_APPLIED] = viewer
        return
    sync.info.pop(_APPLIED, None)
    await rebind(session, viewer)


def settings_for(viewer: Viewer | None) -> tuple[str, str]:
    if viewer is None:
        return "", ""
    org = "" if viewer.organization_id is None else str(viewer.organization_id)
    return org, viewer.role or ""


def _apply(session: Session, connection: Connection) -> None:
    viewer = session.info.get(_VIEWER)
    if session.info.get(_APPLIED, "unset") is viewer:
        return
    org, role = settings_for(viewer)
    connection.execute(
        text(f"SELECT set_config('{ORG_SETTING}', :org, true), set_config('{ROLE_SETTING}', :role, true)"),
        {"org": org, "role": role},
    )
    session.info[_APPLIED] = viewer


@event.listens_for(Session, "after_begin")
def _after_begin(session: Session, transaction: Any, connection: Connection) -> None:
    session.info.pop(_APPLIED, None)
    if _VIEWER in session.info:
        _apply(session, connection)


@event.listens_for(Session, "do_orm_execute")
def _before_execute(state: Any) -> None:
    # A session rebound to another viewer mid-transaction (tests do) acts for the new one from now on.
    session = state.session
    if _VIEWER not in session.info or session.info.get(_APPLIED, "unset") is session.info[_VIEWER]:
        return
    connection = session.connection()  # begins the transaction (and applies, in after_begin) if needed
    if session.info.get(_APPLIED, "unset") is not session.info[_VIEWER]:
        _apply(session, connection)
