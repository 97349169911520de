"""Fixtures of the supplies tests: supplies are kept per organisation, so the service-level tests act for an
organisation that enabled the plugin, on a session of their own (the factory's session acts for the tests'
platform administrator; a session acts for the last viewer bound to it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.database import create_sessionmaker
from core.models import Community, Organization
from core.services import plugins
from core.services.context import SYSTEM, ServiceContext, Viewer
from tests.factories import Factory


@pytest.fixture
async def supplies_org(make: Factory, home_org: int) -> Organization:
    """The organisation that keeps the supplies: the tests' platform administrator's own, with the plugin
    enabled (so what the factories make -- communities, requests, volunteers -- belongs to it too)."""
    await plugins.set_enabled(
        make.ctx,
        organization_id=home_org,
        plugin="supplies",
        enabled=True,
        installed=frozenset({"supplies"}),
        known=frozenset({"supplies"}),
    )
    await make.commit()
    org = await make.ctx.session.get(Organization, home_org)
    assert org is not None
    return org


@pytest.fixture
def staff(supplies_org: Organization) -> Viewer:
    """Every permission (as scripts have), within the supplies organisation only."""
    return replace(SYSTEM, label="supplies staff", organization_id=supplies_org.id)


@pytest.fixture
async def staff_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with create_sessionmaker(engine)() as session:
        yield session


@pytest.fixture
def staff_ctx(staff_session: AsyncSession, staff: Viewer, clock: Callable[[], datetime]) -> ServiceContext:
    """A service context acting for the supplies organisation's staff, on its own session."""
    return ServiceContext(staff_session, staff, clock)


NewCommunity = Callable[..., Awaitable[Community]]


@pytest.fixture
def new_community(make: Factory, supplies_org: Organization) -> NewCommunity:
    """Makes a community of the supplies organisation (goods go to communities of their own organisation)."""

    async def build(**kw: Any) -> Community:
        return await make.community(organization_id=supplies_org.id, **kw)

    return build
