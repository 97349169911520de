"""The situation board's counts (core.services.situation): open requests by urgency, district and community,
overdue ones, available volunteers by mode -- of one organisation, within the caller's scope, in a fixed
number of statements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.errors import DomainError
from core.models import HelpRequest
from core.services import organizations, situation
from core.services.context import ServiceContext, Viewer
from core.vocab import Availability, OrganizationKind, RequestStatus, Urgency, VolunteerMode
from tests.factories import Factory

U = Urgency
Caller = Callable[..., Any]


@pytest.fixture
async def as_viewer(engine: AsyncEngine, clock: Any) -> AsyncIterator[Caller]:
    """Runs the situation service as a given viewer, on a session of its own."""
    sessions = []

    async def run(viewer: Viewer, organization_id: int | None = None) -> situation.Situation:
        session = create_sessionmaker(engine)()
        sessions.append(session)
        return await situation.situation(ServiceContext(session, viewer, clock), organization_id)

    yield run
    for session in sessions:
        await session.close()


async def _other_org(make: Factory) -> int:
    org = await organizations.create_organization(make.ctx, name="外区机构", kind=OrganizationKind.AGENCY)
    await make.commit()
    return org.id


async def _overdue(make: Factory, *requests: HelpRequest) -> None:
    # Submitted three days ago: far past the verification target of any urgency.
    await make.ctx.session.execute(
        update(HelpRequest)
        .where(HelpRequest.id.in_([r.id for r in requests]))
        .values(created_at=datetime.now(UTC) - timedelta(days=3))
    )
    await make.commit()


def _places(pairs: list[tuple[Any, situation.PlaceCount]]) -> list[tuple[str, int, int]]:
    return [(place.name, c.count, c.critical) for place, c in pairs]


async def test_counts_open_requests_of_the_organisation_only(make: Factory, home_org: int, as_viewer: Caller) -> None:
    # given org A (the tests' home) with two districts: 东区 has communities 甲 and 乙, 西区 has 丙
    east, west = await make.district("东区"), await make.district("西区")
    jia = await make.community(east, name="甲")
    yi = await make.community(east, name="乙")
    bing = await make.community(west, name="丙", latitude=None, longitude=None)
    # open requests: 甲 two critical and a high one, 乙 a verified normal, 丙 a low one in progress
    late = await make.request(jia, urgency=U.CRITICAL)
    await make.request(jia, urgency=U.CRITICAL)
    await make.request(jia, urgency=U.HIGH)
    await make.request(yi, RequestStatus.VERIFIED, urgency=U.NORMAL)
    await make.request(bing, RequestStatus.IN_PROGRESS, urgency=U.LOW)
    # requests that are closed: fulfilled, rejected, cancelled (乙, critical)
    for status in (RequestStatus.FULFILLED, RequestStatus.REJECTED, RequestStatus.CANCELLED):
        await make.request(yi, status, urgency=U.CRITICAL)
    # one open request overdue (and a closed one that would be, were it open)
    closed = await make.request(yi, RequestStatus.CANCELLED, urgency=U.CRITICAL)
    await _overdue(make, late, closed)
    # volunteers: available online ×2, offline ×1 (the factory's drivers are offline and available too), one
    # busy online, one off reserve
    await make.volunteer(mode=VolunteerMode.ONLINE)
    await make.volunteer(mode=VolunteerMode.ONLINE)
    await make.volunteer(mode=VolunteerMode.ONLINE, availability=Availability.BUSY)
    await make.volunteer(mode=VolunteerMode.RESERVE, availability=Availability.OFF)
    # and org B, in the same districts, with open (overdue) requests and available volunteers of its own
    other = make.in_org(await _other_org(make))
    theirs = await other.community(east, name="丁")
    their_late = await other.request(theirs, urgency=U.CRITICAL)
    await _overdue(make, their_late)
    await other.volunteer(mode=VolunteerMode.ONLINE)
    await other.volunteer(mode=VolunteerMode.RESERVE)

    # when A's administrator reads the situation
    s = await as_viewer(Viewer(label="a admin", role="organization_admin", organization_id=home_org))

    # then only A's open requests count, by urgency (every urgency, most urgent first), district, community
    assert s.organization_id == home_org
    assert s.open_requests == 5
    assert s.by_urgency == [(U.CRITICAL, 2), (U.HIGH, 1), (U.NORMAL, 1), (U.LOW, 1)]
    assert _places(s.by_district) == [("东区", 4, 2), ("西区", 1, 0)]
    assert _places(s.by_community) == [("甲", 3, 2), ("丙", 1, 0), ("乙", 1, 0)]  # ties by name (code point)
    # the one overdue open request, not the cancelled one nor B's
    assert s.overdue_requests == 1
    # available volunteers of A by mode: the drivers the factory made for the matched/in-progress/fulfilled
    # requests count as offline (available: their assignments are done or they have slots)
    modes = dict(s.volunteers_available_by_mode)
    assert list(modes) == list(VolunteerMode)
    assert modes[VolunteerMode.ONLINE] == 2
    assert modes[VolunteerMode.RESERVE] == 0
    assert modes[VolunteerMode.OFFLINE] >= 1

    # and B's administrator sees B's only (the positive control for "A never sees B")
    b = await as_viewer(
        Viewer(label="b admin", role="organization_admin", organization_id=other.ctx.viewer.organization_id)
    )
    assert (b.open_requests, b.overdue_requests) == (1, 1)
    assert _places(b.by_community) == [("丁", 1, 1)]
    assert dict(b.volunteers_available_by_mode) == {
        VolunteerMode.ONLINE: 1,
        VolunteerMode.OFFLINE: 0,
        VolunteerMode.RESERVE: 1,
    }


async def test_nothing_open_reads_zeros(home_org: int, as_viewer: Caller) -> None:
    s = await as_viewer(Viewer(label="a admin", role="organization_admin", organization_id=home_org))
    assert (s.open_requests, s.overdue_requests, s.by_district, s.by_community) == (0, 0, [], [])
    assert [n for _, n in s.by_urgency] == [0, 0, 0, 0]
    assert [n for _, n in s.volunteers_available_by_mode] == [0, 0, 0]


async def test_a_community_head_counts_their_community_only(make: Factory, home_org: int, as_viewer: Caller) -> None:
    # given two communities of A with open requests
    mine, theirs = await make.community(name="甲"), await make.community(name="乙")
    await make.request(mine, urgency=U.CRITICAL)
    await make.request(theirs)
    await make.request(theirs)
    # when the head of 甲 reads the situation
    head = Viewer(label="head", role="community_head", organization_id=home_org, community_id=mine.id)
    s = await as_viewer(head)
    # then it is 甲's
    assert s.open_requests == 1
    assert _places(s.by_community) == [("甲", 1, 1)]
    # and the organisation's administrator sees both (the control)
    admin = await as_viewer(Viewer(label="a", role="organization_admin", organization_id=home_org))
    assert admin.open_requests == 3


@pytest.mark.parametrize("role", ["volunteer", "counselor", "partner"])
async def test_roles_that_do_not_coordinate_are_refused(home_org: int, as_viewer: Caller, role: str) -> None:
    with pytest.raises(DomainError) as refused:
        await as_viewer(Viewer(label=role, role=role, organization_id=home_org, volunteer_id=1))
    assert refused.value.code == "FORBIDDEN"


async def test_another_organisation_is_forbidden_except_to_platform_administrators(
    make: Factory, home_org: int, as_viewer: Caller
) -> None:
    other = make.in_org(await _other_org(make))
    await other.request(await other.community())
    b = other.ctx.viewer.organization_id
    for role in ("organization_admin", "social_worker", "community_head"):
        with pytest.raises(DomainError) as refused:
            await as_viewer(Viewer(label=role, role=role, organization_id=home_org), b)
        assert refused.value.code == "FORBIDDEN", role
    # a platform administrator names it and sees it
    s = await as_viewer(Viewer(label="p", role="platform_admin", organization_id=home_org), b)
    assert (s.organization_id, s.open_requests) == (b, 1)
    # one of no organisation must name one
    with pytest.raises(DomainError) as required:
        await as_viewer(Viewer(label="p", role="platform_admin"))
    assert required.value.code == "REQUIRED"
    with pytest.raises(DomainError) as anonymous:
        await as_viewer(Viewer())
    assert anonymous.value.code == "UNAUTHENTICATED"


async def test_statement_count_does_not_grow_with_districts_and_communities(
    make: Factory, home_org: int, as_viewer: Caller, statements: Any
) -> None:
    counts = {}
    for places in (2, 16):
        # given open requests in that many more communities, each in a district of its own
        for _ in range(places):
            community = await make.community()
            await make.request(community, urgency=U.CRITICAL)
            await make.request(community, RequestStatus.VERIFIED, urgency=U.LOW)
        # when the situation is read
        statements.statements.clear()
        s = await as_viewer(Viewer(label="a", role="organization_admin", organization_id=home_org))
        counts[places] = statements.count
        assert len(s.by_district) == len(s.by_community) >= places
    # then eight times the places cost no more statements (and a handful at all)
    assert counts[2] == counts[16] <= 6, counts
