"""A small casework world at the service layer: two organisations and one account per kind of caller."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.errors import DomainError
from core.services.context import ServiceContext, Viewer
from plugins.case_work import services
from plugins.case_work.models import Approval, Case, Client, RiskChange, StageChange, Transfer
from tests import two_organisations

MANAGE = frozenset({"case_work.manage"})
SUPERVISE = frozenset({"case_work.manage", "case_work.supervise"})
_serial = itertools.count(1)
# Who each test caller is: (core role, organisation key, plugin permissions as sign-in would give them).
CALLERS: dict[str, tuple[str, str, frozenset[str]]] = {
    "sw": ("social_worker", "a", MANAGE),  # the cases' social worker
    "sw2": ("social_worker", "a", MANAGE),  # another social worker of the organisation
    "sup": ("social_worker", "a", SUPERVISE),  # holds case_work.supervisor
    "admin": ("organization_admin", "a", MANAGE),
    "padmin": ("platform_admin", "a", MANAGE),  # a platform administrator whose account is of A
    "volunteer": ("volunteer", "a", frozenset()),
    "head": ("community_head", "a", frozenset()),
    "counselor": ("counselor", "a", frozenset()),
    "admin_b": ("organization_admin", "b", MANAGE),
    "sup_b": ("social_worker", "b", SUPERVISE),
    "sw_b": ("social_worker", "b", MANAGE),
}


@dataclass
class CaseWorld:
    engine: AsyncEngine
    clock: Any
    ids: dict[str, int] = field(default_factory=dict)

    def viewer(self, who: str) -> Viewer:
        role, org, permissions = CALLERS[who]
        return Viewer(
            label=who,
            account_id=self.ids[who],
            organization_id=self.ids[f"org_{org}"],
            role=role,
            community_id=self.ids.get("community_a") if role == "community_head" else None,
            extra_permissions=permissions,
        )

    @contextlib.asynccontextmanager
    async def as_(self, who: str) -> AsyncIterator[ServiceContext]:
        """A committed transaction as `who` (rolled back when it raises)."""
        async with create_sessionmaker(self.engine)() as session, session.begin():
            yield ServiceContext(session=session, viewer=self.viewer(who), clock=self.clock)

    async def call(self, who: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self.as_(who) as ctx:
            return await fn(ctx, *args, **kwargs)

    async def refused(self, who: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        """The code of the refusal (and the test fails if there is none)."""
        with pytest.raises(DomainError) as err:
            await self.call(who, fn, *args, **kwargs)
        return err.value.code

    async def counts(self) -> tuple[int, ...]:
        """Rows of every casework table, of every organisation (a platform administrator's view under
        row-level security): for "nothing written"."""
        everyone = Viewer(label="count", role="platform_admin")
        async with create_sessionmaker(self.engine)() as session, session.begin():
            ServiceContext(session=session, viewer=everyone)
            return tuple(
                [
                    await session.scalar(select(func.count()).select_from(m)) or 0
                    for m in (Client, Case, StageChange, Approval, RiskChange, Transfer)
                ]
            )

    async def open(self, who: str = "sw", risk: str = "low", **kw: Any) -> int:
        kw.setdefault("client", services.ClientInput(name="独居老人", phone="13700001111", address="碑林区粉巷5号"))
        case = await self.call(
            who,
            services.open_case,
            category=kw.pop("category", "elderly_care"),
            risk_level=risk,
            supervisor_account_id=kw.pop("supervisor", self.ids["sup"]),
            **kw,
        )
        return int(case.id)

    async def case(self, case_id: int) -> Case:
        async with self.as_("admin") as ctx:
            found = await ctx.session.get(Case, case_id)
            assert found is not None
            return found

    async def history(self, case_id: int) -> list[tuple[int, str | None, str, str, str]]:
        async with self.as_("admin") as ctx:
            rows = await ctx.session.scalars(
                select(StageChange).where(StageChange.case_id == case_id).order_by(StageChange.seq)
            )
            return [(h.seq, h.from_stage, h.to_stage, h.actor, h.reason) for h in rows]

    async def assess(self, case_id: int) -> None:
        """Record an assessment of a case in assessment, as its social worker: every domain scored 0, so that
        the case's risk stays as it is."""
        from plugins.case_work.plans import services as plans
        from plugins.case_work.plans.models import DOMAINS

        worker = (await self.case(case_id)).social_worker_account_id
        who = next(name for name in CALLERS if self.ids.get(name) == worker)
        await self.call(who, plans.record_assessment, case_id, [plans.NeedInput(d, 0) for d in DOMAINS])

    async def approve(self, case_id: int, kind: str, requester: str = "sw", approver: str = "sup") -> None:
        """An approved request of `kind` (an assessment approval approves a recorded assessment: one is recorded
        first when the stage visit has none)."""
        from plugins.case_work.plans.models import Assessment

        outcomes = ["目标一：已达成"] if kind == "closure" else []
        if kind == "assessment":
            case = await self.case(case_id)
            async with self.as_("admin") as ctx:
                recorded = await ctx.session.scalar(
                    select(Assessment.id).where(Assessment.case_id == case_id, Assessment.stage_seq == case.stage_seq)
                )
            if recorded is None:
                await self.assess(case_id)
        approval = await self.call(requester, services.request_approval, case_id, kind, "总结", outcomes)
        await self.call(approver, services.decide_approval, approval.id, True)

    async def bring_to(self, case_id: int, stage: str) -> None:
        """Along the shortest path from intake, approvals included."""
        path = {
            "intake": [],
            "assessment": ["assessment"],
            "planning": ["assessment", "planning"],
            "intervention": ["assessment", "planning", "intervention"],
            "evaluation": ["assessment", "planning", "intervention", "evaluation"],
            "closure": ["assessment", "planning", "intervention", "evaluation", "closure"],
            "not_opened": ["not_opened"],
        }[stage]
        for to in path:
            current = (await self.case(case_id)).stage
            if (current, to) == ("assessment", "planning") and (await self.case(case_id)).risk_level == "high":
                await self.approve(case_id, "assessment")
            if to == "closure":
                await self.approve(case_id, "closure")
            await self.call("sw", services.advance, case_id, to, "理由")


@pytest.fixture
async def cw(engine: AsyncEngine, clock: Any) -> CaseWorld:
    world = CaseWorld(engine, clock)
    await two_organisations.build(
        engine, clock, CALLERS, world.ids, plugin_roles={"case_work.supervise": services.SUPERVISOR_ROLE}
    )
    return world
