"""Communities and their liaison teams (one social worker, two volunteers)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from core.errors import DomainError
from core.models import CommunityLiaison
from core.services import communities
from core.services.context import ServiceContext
from core.vocab import LiaisonRole
from tests.concurrency import Racer, rounds
from tests.factories import Factory


async def test_team_takes_one_social_worker_and_two_volunteers(make: Factory) -> None:
    # given a community with a full team
    community = await make.community()
    people = [await make.volunteer() for _ in range(5)]
    await communities.add_liaison(make.ctx, community.id, people[0].id, LiaisonRole.SOCIAL_WORKER)
    await communities.add_liaison(make.ctx, community.id, people[1].id, LiaisonRole.VOLUNTEER)
    await communities.add_liaison(make.ctx, community.id, people[2].id, LiaisonRole.VOLUNTEER)
    # when a fourth member or a second social worker is added
    for person, role in [(people[3], LiaisonRole.VOLUNTEER), (people[4], LiaisonRole.SOCIAL_WORKER)]:
        with pytest.raises(DomainError) as err:
            await communities.add_liaison(make.ctx, community.id, person.id, role)
        # then it is refused
        assert err.value.code == "LIAISON_TEAM_FULL"


async def test_team_limit_holds_under_concurrent_additions(make: Factory, db_url: URL) -> None:
    # given six volunteers
    people = [await make.volunteer() for _ in range(6)]

    async def round_(racer: Racer) -> None:
        # and a community with an empty team
        community = await make.community()

        async def add(ctx: ServiceContext, i: int) -> str:
            await communities.add_liaison(ctx, community.id, people[i].id, LiaisonRole.VOLUNTEER)
            return "ok"

        # when six coordinators seat a volunteer at once
        outcomes = await racer.race(add, viewer=make.ctx.viewer)
        # then two seats are taken and four are told the team is full
        assert sorted(outcomes) == ["LIAISON_TEAM_FULL"] * 4 + ["ok"] * 2
        seated = await make.ctx.session.scalar(
            select(func.count()).where(CommunityLiaison.community_id == community.id)
        )
        assert seated == 2

    async with Racer.open(db_url, workers=6) as racer:
        for _ in range(rounds(5)):
            await round_(racer)


async def test_same_name_in_one_district_is_refused(make: Factory) -> None:
    district = await make.district()
    await make.community(district, name="粉巷社区")
    with pytest.raises(DomainError) as err:
        await communities.create_community(
            make.ctx, communities.CommunityInput(name="粉巷社区", district_id=district.id)
        )
    assert (err.value.code, err.value.errors[0].field) == ("ALREADY_EXISTS", ("input", "name"))


async def test_unknown_district_is_not_found(make: Factory) -> None:
    with pytest.raises(DomainError) as err:
        await communities.create_community(make.ctx, communities.CommunityInput(name="x", district_id=424242))
    assert (err.value.code, err.value.errors[0].field) == ("NOT_FOUND", ("input", "districtId"))


async def test_partial_update_keeps_other_fields(make: Factory) -> None:
    community = await make.community(head_name="李主任", head_phone="13900001111")
    updated = await communities.update_community(make.ctx, community.id, {"head_phone": "029-88881234"})
    assert (updated.head_name, updated.head_phone) == ("李主任", "029-88881234")
