"""The periodic jobs of a running service."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from core import jobs
from core.database import create_sessionmaker
from core.models import Escalation
from core.services import assignments
from core.settings import Settings
from core.vocab import RequestStatus, Urgency
from schema.context import AppState
from tests.factories import Factory


async def test_one_round_expires_offers_and_raises_escalations(make: Factory, engine, clock) -> None:  # type: ignore[no-untyped-def]
    # given an offer and a critical request waiting for verification
    request = await make.request(status=RequestStatus.VERIFIED)
    await assignments.offer(make.ctx, request.id, (await make.volunteer()).id)
    await make.request(urgency=Urgency.CRITICAL, needed_by=None)
    await make.commit()
    state = AppState(settings=Settings(), sessionmaker=create_sessionmaker(engine), clock=clock)
    # when an hour passes and a round runs (twice)
    clock.now += timedelta(hours=1)
    first = await jobs.run_once(state)
    second = await jobs.run_once(state)
    # then the offer expired and the escalation was raised, once
    assert first == (1, 1)
    assert second == (0, 0)
    assert await make.ctx.session.scalar(select(func.count()).select_from(Escalation)) == 1
