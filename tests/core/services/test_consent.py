"""Consents: recorded, listed, revoked (never deleted), and found by `covering`; only for those who keep
the resident's records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from core.errors import DomainError
from core.models import Consent
from core.services import consent, residents
from core.services.context import ServiceContext
from tests.core.services import test_residents
from tests.core.services.test_residents import Actor
from tests.factories import Factory

actor = test_residents.actor  # the fixture: contexts acting for one viewer each, on sessions of their own


async def _resident(worker: ServiceContext) -> int:
    """A resident `worker` recorded and serves (by the test relation)."""
    resident = await residents.create_resident(worker, name="王阿姨", community_id=None, phone="13900001111")
    test_residents.serve(worker, resident.id)
    return resident.id


async def test_a_consent_covers_its_target_and_scopes_while_in_force(
    make: Factory, actor: Actor, home_org: int, clock: object
) -> None:
    # given a resident who consents to share a summary and contact details with counseling at an agency for a month
    agency = (await make.organization_using("counseling")).id
    elsewhere = (await make.organization_using("counseling")).id
    worker = actor("social_worker", home_org)
    resident_id = await _resident(worker)
    now = worker.now()
    given = await consent.record_consent(
        worker,
        resident_id=resident_id,
        scopes=["summary", "contact"],
        target="counseling",
        target_organization_id=agency,
        purpose="转介心理咨询",
        valid_until=now + timedelta(days=30),
    )
    await worker.session.commit()

    async def covers(target: str, scopes: str | list[str], at: Any = None, org: int | None = agency) -> int | None:
        found = await consent.covering(worker, resident_id, target, scopes, at, target_organization_id=org)
        return None if found is None else found.id

    # then it covers the summary, and both scopes together, for counseling at the agency now
    assert await covers("counseling", "summary") == given.id
    assert await covers("counseling", ["summary", "contact"]) == given.id
    assert consent.allows(given, "counseling", ["summary"], now, target_organization_id=agency)
    # but not health details, not another service, not counseling at another organisation, not after it ends
    assert await covers("counseling", "health") is None
    assert await covers("maternal_care", "summary") is None
    assert await covers("counseling", "summary", org=elsewhere) is None
    assert not consent.allows(given, "counseling", ["summary"], now, target_organization_id=elsewhere)
    assert await covers("counseling", "summary", now + timedelta(days=31)) is None
    # when it is revoked
    await consent.revoke_consent(worker, given.id, reason="居民撤回")
    # then it covers nothing, and it is still listed (revoked, with who and why)
    assert await covers("counseling", "summary") is None
    [listed] = await consent.list_consents(worker, resident_id)
    assert (listed.id, listed.revoked_by, listed.revoke_reason) == (given.id, f"social_worker@{home_org}", "居民撤回")
    # and a second revocation is refused
    with pytest.raises(DomainError) as err:
        await consent.revoke_consent(worker, given.id)
    assert err.value.code == "INVALID_TRANSITION"


async def test_bad_input_is_refused_and_nothing_is_written(actor: Actor, home_org: int) -> None:
    worker = actor("social_worker", home_org)
    resident_id = await _resident(worker)
    with pytest.raises(DomainError) as err:
        await consent.record_consent(
            worker, resident_id=resident_id, scopes=["gossip"], target="Not A Plugin", purpose=" "
        )
    assert {(e.code, e.field) for e in err.value.errors} == {
        ("INVALID_INPUT", ("input", "scopes")),
        ("INVALID_INPUT", ("input", "target")),
        ("REQUIRED", ("input", "targetOrganizationId")),
        ("REQUIRED", ("input", "purpose")),
    }
    # a plugin's service is at a named organisation; an outside body is named in the text alone
    with pytest.raises(DomainError) as err:
        await consent.record_consent(
            worker, resident_id=resident_id, scopes=["summary"], target="counseling", purpose="x"
        )
    assert {(e.code, e.field) for e in err.value.errors} == {("REQUIRED", ("input", "targetOrganizationId"))}
    with pytest.raises(DomainError) as err:
        await consent.record_consent(
            worker,
            resident_id=resident_id,
            scopes=["summary"],
            target="碑林区妇联",
            target_kind="outside",
            target_organization_id=home_org,
            purpose="x",
        )
    assert {(e.code, e.field) for e in err.value.errors} == {("INVALID_INPUT", ("input", "targetOrganizationId"))}
    # a well-formed name no service here receives referrals for (a consent is never edited: a typo would stay)
    with pytest.raises(DomainError) as err:
        await consent.record_consent(
            worker,
            resident_id=resident_id,
            scopes=["summary"],
            target="counselling",
            target_organization_id=home_org,
            purpose="x",
        )
    assert {(e.code, e.field) for e in err.value.errors} == {("REFERRAL_TARGET_UNKNOWN", ("input", "target"))}
    assert (await worker.session.scalars(select(Consent))).all() == []


async def test_consents_are_never_deleted(actor: Actor, home_org: int) -> None:
    worker = actor("social_worker", home_org)
    resident_id = await _resident(worker)
    await consent.record_consent(
        worker,
        resident_id=resident_id,
        scopes=["summary"],
        target="counseling",
        target_organization_id=home_org,
        purpose="x",
    )
    await worker.session.commit()
    # when someone deletes it in the database directly; then the database refuses
    with pytest.raises(Exception, match="never deleted"):
        await worker.session.execute(delete(Consent))


@pytest.mark.parametrize("role", ["volunteer", "community_head", "other_org_admin"])
async def test_those_who_do_not_keep_the_residents_records_see_no_consent(
    make: Factory, actor: Actor, home_org: int, role: str
) -> None:
    # given a resident's consent
    worker = actor("social_worker", home_org)
    resident_id = await _resident(worker)
    given = await consent.record_consent(
        worker,
        resident_id=resident_id,
        scopes=["summary"],
        target="counseling",
        target_organization_id=home_org,
        purpose="x",
    )
    await worker.session.commit()
    if role == "other_org_admin":
        other = await make.organization_using("counseling")
        them = actor("organization_admin", other.id)
    else:
        them = actor(role, home_org)
    # then they can neither list, read, record nor revoke: the resident answers as missing
    for attempt in (
        lambda: consent.list_consents(them, resident_id),
        lambda: consent.get_consent(them, given.id),
        lambda: consent.revoke_consent(them, given.id),
        lambda: consent.record_consent(
            them, resident_id=resident_id, scopes=["summary"], target="x1", target_organization_id=home_org, purpose="x"
        ),
    ):
        with pytest.raises(DomainError) as err:
            await attempt()
        assert err.value.code == "NOT_FOUND"
    # positive control: the organisation's administrator lists it
    assert [c.id for c in await consent.list_consents(actor("organization_admin", home_org), resident_id)] == [given.id]


async def test_a_consent_is_never_rewritten_and_revoked_once_in_the_database(actor: Actor, home_org: int) -> None:
    # given a recorded consent
    worker = actor("social_worker", home_org)
    resident_id = await _resident(worker)
    given = await consent.record_consent(
        worker,
        resident_id=resident_id,
        scopes=["summary"],
        target="counseling",
        target_organization_id=home_org,
        purpose="x",
    )
    consent_id = given.id
    await worker.session.commit()
    # when someone widens what it allows in the database directly; then the database refuses
    with pytest.raises(Exception, match="only its revocation"):
        await worker.session.execute(
            update(Consent).where(Consent.id == consent_id).values(scopes=["summary", "health"])
        )
    await worker.session.rollback()
    # and once revoked, the revocation is neither undone nor rewritten
    await consent.revoke_consent(worker, consent_id, reason="居民撤回")
    await worker.session.commit()
    for change in ({"revoked_at": None, "revoked_by": None}, {"revoke_reason": "改写"}):
        with pytest.raises(Exception, match="only its revocation"):
            await worker.session.execute(update(Consent).where(Consent.id == consent_id).values(**change))
        await worker.session.rollback()
    [kept] = await consent.list_consents(worker, resident_id)
    assert (kept.scopes, kept.revoke_reason) == (["summary"], "居民撤回")
