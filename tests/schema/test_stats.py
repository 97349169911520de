"""The stats query: the seed's headline figures."""

from __future__ import annotations

from decimal import Decimal

from core.services import assignments
from core.vocab import RequestStatus
from tests.factories import Factory

STATS = """{ stats { volunteersTotal volunteersByMode { mode count } volunteersByDistrict { key count }
  requestsTotal requestsByStatus { status count } requestsByCategory { category count }
  requestsByUrgency { urgency count }
  communitiesTotal communitiesServed beneficiariesServed hoursServed hoursByTeam { team hours } } }"""


async def test_stats_count_what_is_there(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given two districts' volunteers and requests in several states, one fulfilled with 3.5 hours served
    district = await make.district("雁塔区")
    for mode in ("online", "offline", "offline"):
        await make.volunteer(mode=mode, district_id=district.id)
    await make.volunteer(mode="reserve")
    community = await make.community(district)
    await make.request(community, status=RequestStatus.SUBMITTED, category="food")
    done = await make.request(community, status=RequestStatus.FULFILLED, beneficiaries=30)
    await make.community()
    (held,) = await assignments.list_for_request(make.ctx, done.id, [])
    await assignments.complete(make.ctx, held.id, Decimal("3.5"))
    await make.commit()
    # when the stats are read
    stats = (await gql(STATS))["stats"]
    # then every figure matches
    assert stats["volunteersTotal"] == 5  # four above, plus the driver the fulfilled request needed
    assert {b["mode"]: b["count"] for b in stats["volunteersByMode"]} == {"OFFLINE": 3, "ONLINE": 1, "RESERVE": 1}
    assert {b["key"]: b["count"] for b in stats["volunteersByDistrict"]}["雁塔区"] == 3
    assert stats["requestsTotal"] == 2
    assert {b["status"]: b["count"] for b in stats["requestsByStatus"]} == {"SUBMITTED": 1, "FULFILLED": 1}
    assert {b["category"]: b["count"] for b in stats["requestsByCategory"]} == {"FOOD": 1, "MEDICINE": 1}
    assert (stats["communitiesTotal"], stats["communitiesServed"]) == (2, 1)
    assert (stats["beneficiariesServed"], stats["hoursServed"]) == (30, "3.50")
    # the driver who served belongs to no team in this test
    assert stats["hoursByTeam"] == []


async def test_hours_are_totalled_per_team(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given a delivery-and-training volunteer who served 2 hours and a publicity one who served 1.5
    from core.services import help_requests

    for teams, hours in ((["delivery", "training"], "2"), (["publicity"], "1.5")):
        request = await make.request(status=RequestStatus.VERIFIED)
        volunteer = await make.volunteer(teams=teams)
        offer = await assignments.offer(make.ctx, request.id, volunteer.id)
        await assignments.accept(make.ctx, offer.id)
        await help_requests.start(make.ctx, request.id)
        await assignments.complete(make.ctx, offer.id, Decimal(hours))
    await make.commit()
    # then each team's total counts its members' hours
    data = await gql("{ stats { hoursByTeam { team hours } } }")
    assert data["stats"]["hoursByTeam"] == [
        {"team": "delivery", "hours": "2.00"},
        {"team": "training", "hours": "2.00"},
        {"team": "publicity", "hours": "1.50"},
    ]
