"""Periodic work of a running service: expire unanswered offers, raise escalations.

Runs inside `yunshegong serve` (the app's lifespan) every YUNSHEGONG_JOBS_INTERVAL seconds. Safe with
several processes: expiry skips rows another process holds (SKIP LOCKED) and escalations are unique
per request and stage.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from sqlalchemy import select

from core.models import Organization
from core.services import assignments, deadlines
from core.services.context import SYSTEM, ServiceContext

log = logging.getLogger(__name__)


async def run_once(state: object) -> tuple[int, int]:
    """One round: (offers expired, escalations raised). Each organisation's work runs in a transaction
    of its own, acting for that organisation: a job sees no more than the organisation it works for."""
    async with state.sessionmaker() as session:  # type: ignore[attr-defined]
        org_ids = (await session.scalars(select(Organization.id).order_by(Organization.id))).all()
    expired = raised = 0
    for org_id in org_ids:
        async with state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
            viewer = replace(SYSTEM, organization_id=org_id)
            ctx = ServiceContext(session=session, viewer=viewer, clock=state.clock, policy=state.policy)  # type: ignore[attr-defined]
            if state.host is not None:  # type: ignore[attr-defined]
                ctx.events = state.host  # type: ignore[attr-defined]
            expired += await assignments.expire_offers(ctx)
            raised += await deadlines.escalate(ctx)
    return expired, raised


async def run_forever(state: object, interval: float) -> None:
    while True:
        try:
            expired, raised = await run_once(state)
            if expired or raised:
                log.info("jobs: %d offers expired, %d escalations raised", expired, raised)
        except asyncio.CancelledError:
            raise
        except Exception:  # a failing round must not stop the next one
            log.exception("periodic jobs failed")
        await asyncio.sleep(interval)
