"""Residents and referrals over the real GraphQL endpoint: masking, who sees what, no N+1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.services import consent, referrals, residents
from core.services.context import Viewer
from core.settings import Settings
from schema import ids
from schema.context import AppState
from tests.conftest import GraphQLClient, StatementCounter
from tests.core.services import test_residents
from tests.core.services.test_residents import Actor
from tests.factories import Factory
from yunshegong.app import create_app

actor = test_residents.actor
COUNSEL = "counseling.manage"
Client = Callable[[Viewer], GraphQLClient]


@pytest.fixture
async def client_as(engine: AsyncEngine, clock: Any) -> AsyncIterator[Client]:
    """`client_as(viewer)`: a GraphQL client whose every request acts for `viewer`."""
    host = test_residents.serving_host()
    settings = Settings(database_url=None, max_page_size=200)
    opened: list[httpx.AsyncClient] = []

    def make(viewer: Viewer) -> GraphQLClient:
        async def authenticate(request: Any, session: Any) -> Viewer:
            return viewer

        state = AppState(
            settings=settings,
            sessionmaker=create_sessionmaker(engine),
            clock=clock,
            host=host,
            authenticate=authenticate,
        )
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, engine=engine, state=state)), base_url="http://test"
        )
        opened.append(http)
        return GraphQLClient(http)

    yield make
    for http in opened:
        await http.aclose()


RESIDENT = "query($id: ID!) { resident(id: $id) { name phone address } }"
RECEIVED = "{ referralsReceived { nodes { id status summary residentId } } }"


def viewer(role: str, org: int, *permissions: str) -> Viewer:
    return Viewer(label=f"{role}@{org}", role=role, organization_id=org, extra_permissions=frozenset(permissions))


async def test_contact_details_are_masked_for_those_not_serving_and_the_resident_hidden_from_others(
    make: Factory, actor: Actor, client_as: Client, home_org: int
) -> None:
    worker = actor("social_worker", home_org)
    resident = await residents.create_resident(
        worker, name="王阿姨", community_id=None, phone="13900001111", address="碑林区粉巷 1 号"
    )
    await worker.session.commit()
    other = await make.organization_using("counseling")
    node = ids.encode("Resident", resident.id)
    # the social worker who serves them (a plugin's relation) reads them in full
    test_residents.SERVED["social_worker@serving"] = [resident.id]
    serving = Viewer(label="social_worker@serving", role="social_worker", organization_id=home_org)
    data = await client_as(serving)(RESIDENT, {"id": node})
    assert data["resident"] == {"name": "王阿姨", "phone": "13900001111", "address": "碑林区粉巷 1 号"}
    # the same serving relation in another organisation's name reaches nothing
    elsewhere = Viewer(label="social_worker@serving", role="social_worker", organization_id=other.id)
    assert (await client_as(elsewhere)(RESIDENT, {"id": node}))["resident"] is None
    # another social worker or counselor of the organisation, who serves them by no relation, sees nothing
    for role in ("social_worker", "counselor"):
        assert (await client_as(viewer(role, home_org))(RESIDENT, {"id": node}))["resident"] is None, role
    # the organisation's administrator sees the resident, contact details masked
    data = await client_as(viewer("organization_admin", home_org))(RESIDENT, {"id": node})
    assert data["resident"] == {"name": "王阿姨", "phone": "139****1111", "address": "碑林区****"}
    # a volunteer of the organisation, and the administrator of another, see nothing
    for who in (viewer("volunteer", home_org), viewer("organization_admin", other.id)):
        assert (await client_as(who)(RESIDENT, {"id": node}))["resident"] is None


async def _referred(make: Factory, actor: Actor, home_org: int, n: int = 1) -> tuple[int, int, list[int]]:
    agency = await make.organization_using("counseling")
    sender = actor("social_worker", home_org)
    sent: list[int] = []
    consent_id = 0
    for i in range(n):
        resident = await residents.create_resident(sender, name=f"居民{i}", community_id=None)
        test_residents.SERVED.setdefault(sender.viewer.label, []).append(resident.id)  # the sender serves them
        given = await consent.record_consent(
            sender,
            resident_id=resident.id,
            scopes=["summary"],
            target="counseling",
            target_organization_id=agency.id,
            purpose="心理支持",
        )
        consent_id = given.id
        referral = await referrals.send_referral(
            sender,
            resident_id=resident.id,
            consent_id=given.id,
            summary=f"摘要{i}",
            target_plugin="counseling",
            target_organization_id=agency.id,
        )
        sent.append(referral.id)
    await sender.session.commit()
    return agency.id, consent_id, sent


async def test_the_recipient_reads_the_summary_not_the_resident_until_the_consent_ends(
    make: Factory, actor: Actor, client_as: Client, home_org: int
) -> None:
    agency, consent_id, [referral_id] = await _referred(make, actor, home_org)
    counselor = client_as(viewer("counselor", agency, COUNSEL))
    [node] = (await counselor(RECEIVED))["referralsReceived"]["nodes"]
    assert (node["id"], node["status"], node["summary"], node["residentId"]) == (
        ids.encode("Referral", referral_id),
        "SENT",
        "摘要0",
        None,
    )
    # a member of the agency without counseling's permission sees nothing
    assert (await client_as(viewer("volunteer", agency))(RECEIVED))["referralsReceived"]["nodes"] == []
    # when the resident's consent is revoked, the next query returns nothing
    sender = actor("social_worker", home_org)
    await consent.revoke_consent(sender, consent_id)
    await sender.session.commit()
    assert (await counselor(RECEIVED))["referralsReceived"]["nodes"] == []


async def test_the_referral_lists_cost_the_same_statements_for_one_or_many(
    make: Factory, actor: Actor, client_as: Client, home_org: int, statements: StatementCounter
) -> None:
    query = "{ referralsSent { nodes { id status summary residentId targetOrganizationId } } }"
    sender = client_as(viewer("social_worker", home_org))
    await _referred(make, actor, home_org, n=1)
    before = statements.count
    assert len((await sender(query))["referralsSent"]["nodes"]) == 1
    one = statements.count - before
    await _referred(make, actor, home_org, n=6)
    before = statements.count
    assert len((await sender(query))["referralsSent"]["nodes"]) == 7
    assert statements.count - before == one
