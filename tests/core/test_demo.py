"""The demo data set: modelled on the seed, loaded once however often it is asked for."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.demo import COMMUNITIES, VOLUNTEER_COUNT, load_demo
from core.models import Community, HelpRequest, Volunteer


async def _count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_demo_loads_the_seed_story_once(engine: AsyncEngine, session: AsyncSession) -> None:
    # when the demo is loaded twice
    first = await load_demo(engine)
    counts = [await _count(session, m) for m in (Community, Volunteer, HelpRequest)]
    second = await load_demo(engine)
    # then the second load adds nothing
    assert (first, second) == (True, False)
    assert [await _count(session, m) for m in (Community, Volunteer, HelpRequest)] == counts
    assert counts[:2] == [len(COMMUNITIES), VOLUNTEER_COUNT]
    # and the seed's requests are there: the TB medicine run for 30 patients is under way
    tb = await session.scalar(select(HelpRequest).where(HelpRequest.title.contains("结核病")))
    assert tb is not None
    assert (tb.beneficiaries, tb.status, tb.urgency) == (30, "in_progress", "critical")
    formula = await session.scalar(select(HelpRequest).where(HelpRequest.title.contains("奶粉")))
    assert formula is not None
    assert formula.status == "matched"
