"""A small maternal-care world at the service layer, shared by the registry's and the lectures' tests: two
organisations (A, B) with a community each, one account per kind of caller, and in A a mother (`mother`,
resident `resident`) assigned to `sw`, with an ongoing pregnancy (`pregnancy`) 20 weeks along today.

`mc.call(who, fn, ...)` runs a service in a committed transaction as `who`; `mc.refused(...)` returns the
code of the refusal; `mc.counts()` counts every registry table across organisations ("nothing written")."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.errors import DomainError
from core.models import Resident
from core.plugins import build_plugin_host
from core.services.context import ServiceContext, Viewer
from plugins.maternal_care.models import DatingCorrection, Mother, Pregnancy, RiskChange
from plugins.maternal_care.registry import services
from tests import two_organisations

MANAGE = frozenset({services.MANAGE})
STAFF = frozenset({services.MANAGE, services.HEALTH, services.LECTURES})
ADMIN = frozenset({services.MANAGE, services.LECTURES})
_serial = itertools.count(1)
# Who each test caller is: (core role, organisation key, plugin permissions as sign-in would give them).
CALLERS: dict[str, tuple[str, str, frozenset[str]]] = {
    "sw": ("social_worker", "a", MANAGE),  # the mother's assigned social worker
    "sw2": ("social_worker", "a", MANAGE),  # another social worker of the organisation
    "staff": ("social_worker", "a", STAFF),  # holds maternal_care.staff (a midwife, the coordinator)
    "admin": ("organization_admin", "a", ADMIN),
    "padmin": ("platform_admin", "a", ADMIN),  # a platform administrator whose account is of A
    "counselor": ("counselor", "a", frozenset()),
    "volunteer": ("volunteer", "a", frozenset()),
    "head": ("community_head", "a", frozenset()),
    "admin_b": ("organization_admin", "b", ADMIN),
    "sw_b": ("social_worker", "b", MANAGE),
    "staff_b": ("social_worker", "b", STAFF),
}
WEEKS_ALONG = 20


@dataclass
class MaternalWorld:
    engine: AsyncEngine
    clock: Any
    ids: dict[str, int] = field(default_factory=dict)
    host: Any = None

    def viewer(self, who: str) -> Viewer:
        role, org, permissions = CALLERS[who]
        return Viewer(
            label=who,
            account_id=self.ids[who],
            organization_id=self.ids[f"org_{org}"],
            role=role,
            community_id=self.ids.get(f"community_{org}") if role == "community_head" else None,
            extra_permissions=permissions,
        )

    @contextlib.asynccontextmanager
    async def as_(self, who: str) -> AsyncIterator[ServiceContext]:
        """A committed transaction as `who` (rolled back when it raises), with the plugin host (events)."""
        async with create_sessionmaker(self.engine)() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=self.viewer(who), clock=self.clock)
            if self.host is not None:
                ctx.events = self.host
            yield ctx

    async def call(self, who: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self.as_(who) as ctx:
            return await fn(ctx, *args, **kwargs)

    async def refused(self, who: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        """The code of the refusal (the test fails if there is none)."""
        with pytest.raises(DomainError) as err:
            await self.call(who, fn, *args, **kwargs)
        return err.value.code

    async def counts(self) -> tuple[int, ...]:
        """Rows of residents and of every registry table, of every organisation: for "nothing written"."""
        everyone = Viewer(label="count", role="platform_admin")
        async with create_sessionmaker(self.engine)() as session, session.begin():
            ServiceContext(session=session, viewer=everyone)
            return tuple(
                [
                    await session.scalar(select(func.count()).select_from(m)) or 0
                    for m in (Resident, Mother, Pregnancy, RiskChange, DatingCorrection)
                ]
            )

    async def today(self) -> date:
        async with self.as_("admin") as ctx:
            return services.today(ctx)

    async def pregnancy(self, pregnancy_id: int | None = None) -> Pregnancy:
        async with self.as_("admin") as ctx:
            found = await ctx.session.get(Pregnancy, pregnancy_id or self.ids["pregnancy"])
            assert found is not None
            return found

    async def new_mother(self, who: str = "sw", worker: str = "sw", name: str = "孕妇") -> int:
        """Another mother of `worker`'s organisation (a new resident), registered by `who`."""
        mother = await self.call(
            who,
            services.register_mother,
            consent=True,
            social_worker_account_id=self.ids[worker],
            name=f"{name}{next(_serial)}",
            phone=f"137{next(_serial):08d}",
            address="雁塔区小寨东路12号",
            community_id=self.ids[f"community_{CALLERS[worker][1]}"],
        )
        return int(mother.id)

    async def new_pregnancy(self, mother_id: int, weeks: int = WEEKS_ALONG, who: str = "staff", **kw: Any) -> int:
        lmp = await self.today() - timedelta(weeks=weeks)
        pregnancy = await self.call(who, services.register_pregnancy, mother_id, lmp=lmp, **kw)
        return int(pregnancy.id)


@pytest.fixture
async def mc(engine: AsyncEngine, clock: Any) -> MaternalWorld:
    world = MaternalWorld(engine, clock, host=build_plugin_host(entry_points=False))
    await two_organisations.build(
        engine, clock, CALLERS, world.ids, plugin_roles={services.HEALTH: services.STAFF_ROLE}
    )
    mother = await world.call(
        "sw",
        services.register_mother,
        consent=True,
        social_worker_account_id=world.ids["sw"],
        name="孕妇刘女士",
        phone="13700002001",
        address="雁塔区小寨东路12号3单元",
        community_id=world.ids["community_a"],
        consent_note="电话同意",
    )
    world.ids["mother"], world.ids["resident"] = mother.id, mother.resident_id
    world.ids["pregnancy"] = await world.new_pregnancy(mother.id, who="sw")
    return world
