"""Referrals: sent under a consent to a plugin's service of another organisation, answered there, and
visible there only while live and consented -- enforced by the database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import URL

from core import events
from core.errors import DomainError
from core.models import Referral, Resident
from core.services import consent, referrals, residents
from core.services.context import ServiceContext
from plugins.counseling.models import Client
from tests.concurrency import Racer, rounds
from tests.core.services import test_residents
from tests.core.services.test_residents import Actor
from tests.factories import Factory

actor = test_residents.actor  # the fixture: contexts acting for one viewer each, on sessions of their own
COUNSEL = "counseling.manage"
HEAD_STARTS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.04)  # seconds the revocation of a consent runs alone first


@dataclass
class Setup:
    sender: ServiceContext
    recipient: ServiceContext
    receiving_org: int
    resident_id: int
    consent_id: int


async def _setup(
    make: Factory, actor: Actor, home_org: int, scopes: tuple[str, ...] = ("summary",), *, in_house: bool = False
) -> Setup:
    """A resident of the home organisation who consents to counseling, and a counseling agency (`in_house`:
    the home organisation's own counseling service, with the same organisation sending and receiving)."""
    agency = await make.organization_using("counseling")
    if in_house:
        home_org = agency.id
    sender = actor("social_worker", home_org)
    resident = await residents.create_resident(
        sender, name="王阿姨", community_id=None, phone="13900001111", address="碑林区粉巷 1 号"
    )
    test_residents.serve(sender, resident.id)  # the social worker serves the resident (a plugin's relation)
    given = await consent.record_consent(
        sender,
        resident_id=resident.id,
        scopes=list(scopes),
        target="counseling",
        target_organization_id=agency.id,
        purpose="心理支持",
    )
    await sender.session.commit()
    return Setup(sender, actor("counselor", agency.id, COUNSEL), agency.id, resident.id, given.id)


async def _send(s: Setup, **kw: Any) -> Referral:
    referral = await referrals.send_referral(
        s.sender,
        resident_id=s.resident_id,
        consent_id=kw.pop("consent_id", s.consent_id),
        summary=kw.pop("summary", "丧偶后情绪低落，需要心理支持"),
        target_plugin=kw.pop("target_plugin", "counseling"),
        target_organization_id=kw.pop("target_organization_id", s.receiving_org),
        **kw,
    )
    await s.sender.session.commit()
    return referral


async def _received_ids(ctx: ServiceContext) -> list[int]:
    page = await referrals.referrals_received(ctx)
    await ctx.session.commit()
    return [r.id for r in page.items]


async def _count(make: Factory) -> int:
    return int(await make.ctx.session.scalar(select(func.count()).select_from(Referral)) or 0)


async def test_round_trip_sent_accepted_completed(make: Factory, actor: Actor, home_org: int) -> None:
    # given a referral to counseling at the agency
    s = await _setup(make, actor, home_org)
    referral = await _send(s)
    # then the agency's counselor sees it, and reads its summary
    assert await _received_ids(s.recipient) == [referral.id]
    # but not the resident: the database shows the recipient no resident row
    assert (await s.recipient.session.scalars(select(Resident))).all() == []
    with pytest.raises(DomainError) as err:
        await residents.get_resident(s.recipient, s.resident_id)
    assert err.value.code == "NOT_FOUND"
    await s.recipient.session.rollback()
    # when the counselor accepts it
    accepted = await referrals.accept_referral(s.recipient, referral.id)
    await s.recipient.session.commit()
    assert (accepted.status, accepted.answered_by) == ("accepted", f"counselor@{s.receiving_org}")
    # then counseling made its own client, with the name only (the consent did not cover contact details)
    [client] = (await s.recipient.session.scalars(select(Client))).all()
    assert (client.organization_id, client.name, client.phone) == (s.receiving_org, "王阿姨", "")
    own = await s.recipient.session.get(Resident, client.resident_id)
    assert own is not None
    assert (own.organization_id, own.address) == (s.receiving_org, "")
    await s.recipient.session.commit()
    # when it is completed
    done = await referrals.complete_referral(s.recipient, referral.id, note="八次咨询后结案")
    await s.recipient.session.commit()
    # then the sender sees it completed
    [sent] = (await referrals.referrals_sent(s.sender)).items
    assert (sent.id, sent.status, sent.completion_note) == (done.id, "completed", "八次咨询后结案")


async def test_contact_details_are_copied_only_under_the_contact_scope(
    make: Factory, actor: Actor, home_org: int
) -> None:
    s = await _setup(make, actor, home_org, scopes=("summary", "contact"))
    referral = await _send(s)
    await referrals.accept_referral(s.recipient, referral.id)
    await s.recipient.session.commit()
    [client] = (await s.recipient.session.scalars(select(Client))).all()
    assert client.phone == "13900001111"


async def test_decline_needs_a_reason_and_the_sender_learns_it(make: Factory, actor: Actor, home_org: int) -> None:
    s = await _setup(make, actor, home_org)
    referral = await _send(s)
    with pytest.raises(DomainError) as err:
        await referrals.decline_referral(s.recipient, referral.id, reason=" ")
    assert (err.value.code, err.value.errors[0].field) == ("REQUIRED", ("input", "reason"))
    await referrals.decline_referral(s.recipient, referral.id, reason="本机构暂无空档")
    await s.recipient.session.commit()
    [sent] = (await referrals.referrals_sent(s.sender)).items
    assert (sent.status, sent.decline_reason) == ("declined", "本机构暂无空档")
    # and a declined referral cannot be accepted afterwards
    with pytest.raises(DomainError) as err:
        await referrals.accept_referral(s.recipient, referral.id)
    assert err.value.code == "INVALID_TRANSITION"


async def test_revoking_the_referral_ends_the_recipients_view_at_once(
    make: Factory, actor: Actor, home_org: int
) -> None:
    s = await _setup(make, actor, home_org)
    referral = await _send(s)
    assert await _received_ids(s.recipient) == [referral.id]
    # when the sender revokes it
    await referrals.revoke_referral(s.sender, referral.id, reason="居民改变主意")
    await s.sender.session.commit()
    # then the recipient sees nothing, even reading the table directly, and cannot act on it
    assert await _received_ids(s.recipient) == []
    assert (await s.recipient.session.scalars(select(Referral))).all() == []
    with pytest.raises(DomainError) as err:
        await referrals.accept_referral(s.recipient, referral.id)
    assert err.value.code == "NOT_FOUND"


async def test_revoking_the_consent_ends_the_recipients_view_at_once(
    make: Factory, actor: Actor, home_org: int
) -> None:
    s = await _setup(make, actor, home_org)
    referral = await _send(s)
    await referrals.accept_referral(s.recipient, referral.id)
    await s.recipient.session.commit()
    assert await _received_ids(s.recipient) == [referral.id]
    # when the resident withdraws the consent (which revokes the referral too; the database's own consent
    # condition, for a consent ended by any other path, is proven in tests/core/test_people_catalog.py)
    await consent.revoke_consent(s.sender, s.consent_id, reason="不再同意")
    await s.sender.session.commit()
    # then the recipient's next query returns nothing, even reading the table directly
    assert await _received_ids(s.recipient) == []
    assert (await s.recipient.session.execute(text("SELECT id FROM referrals"))).all() == []
    with pytest.raises(DomainError) as err:
        await referrals.complete_referral(s.recipient, referral.id)
    assert err.value.code == "NOT_FOUND"


@pytest.mark.parametrize("end", ["referral", "consent"])
async def test_in_one_organisation_revoking_ends_the_recipients_view_at_once(
    make: Factory, actor: Actor, home_org: int, end: str
) -> None:
    # given a social worker referring a resident to a counselor of their own organisation (row-level security
    # cannot hide it there: both are members of the organisation that owns the row), accepted
    s = await _setup(make, actor, home_org, in_house=True)
    referral = await _send(s)
    await referrals.accept_referral(s.recipient, referral.id)
    await s.recipient.session.commit()
    assert await _received_ids(s.recipient) == [referral.id]
    assert list(await referrals.referrals_by_id(s.recipient, [referral.id])) == [referral.id]
    # when the sender revokes the referral, or the resident the consent
    if end == "referral":
        await referrals.revoke_referral(s.sender, referral.id, reason="居民改变主意")
    else:
        await consent.revoke_consent(s.sender, s.consent_id, reason="不再同意")
    await s.sender.session.commit()
    # then the counselor's list and node lookups show nothing, and nothing can be done with it
    assert await _received_ids(s.recipient) == []
    assert await referrals.referrals_by_id(s.recipient, [referral.id]) == {}
    with pytest.raises(DomainError) as err:
        await referrals.complete_referral(s.recipient, referral.id)
    assert err.value.code == "NOT_FOUND"
    # while the sender still sees what they sent
    assert list(await referrals.referrals_by_id(s.sender, [referral.id])) == [referral.id]


async def test_a_referral_to_a_plugin_the_recipient_has_not_enabled_fails_and_writes_nothing(
    make: Factory, actor: Actor, home_org: int
) -> None:
    s = await _setup(make, actor, home_org)
    # an organisation without counseling (and one that does not exist: the same answer)
    bare = await make.organization_using("supplies")
    for org in (bare.id, 987654):
        with pytest.raises(DomainError) as err:
            await _send(s, target_organization_id=org)
        assert (err.value.code, err.value.errors[0].field) == (
            "REFERRAL_TARGET_DISABLED",
            ("input", "targetOrganizationId"),
        )
        await s.sender.session.rollback()
    # and a target no plugin offers
    with pytest.raises(DomainError) as err:
        await _send(s, target_plugin="astrology")
    assert err.value.code == "REFERRAL_TARGET_UNKNOWN"
    await s.sender.session.rollback()
    assert await _count(make) == 0


async def test_a_referral_without_a_covering_consent_fails_and_writes_nothing(
    make: Factory, actor: Actor, home_org: int
) -> None:
    s = await _setup(make, actor, home_org)
    # a consent for another service, one not covering the summary, and one for counseling at another agency
    elsewhere = (await make.organization_using("counseling")).id

    async def given(target: str, scope: str, org: int) -> int:
        found = await consent.record_consent(
            s.sender, resident_id=s.resident_id, scopes=[scope], target=target, target_organization_id=org, purpose="x"
        )
        return found.id

    other = await given("supplies", "summary", s.receiving_org)
    narrow = await given("counseling", "contact", s.receiving_org)
    another_agency = await given("counseling", "summary", elsewhere)
    await s.sender.session.commit()
    for consent_id in (other, narrow, another_agency):
        with pytest.raises(DomainError) as err:
            await _send(s, consent_id=consent_id)
        assert (err.value.code, err.value.errors[0].field) == ("CONSENT_REQUIRED", ("input", "consentId"))
        await s.sender.session.rollback()
    # and the right consent once revoked
    await consent.revoke_consent(s.sender, s.consent_id)
    await s.sender.session.commit()
    with pytest.raises(DomainError) as err:
        await _send(s)
    assert err.value.code == "CONSENT_REQUIRED"
    await s.sender.session.rollback()
    assert await _count(make) == 0


@pytest.mark.parametrize(
    "who", ["volunteer_of_agency", "admin_of_third_org", "counselor_without_permission", "sender_volunteer"]
)
async def test_who_else_sees_the_referral(make: Factory, actor: Actor, home_org: int, who: str) -> None:
    s = await _setup(make, actor, home_org)
    referral = await _send(s)
    third = await make.organization_using("counseling")
    them = {
        "volunteer_of_agency": actor("volunteer", s.receiving_org),
        "admin_of_third_org": actor("organization_admin", third.id, COUNSEL),
        "counselor_without_permission": actor("counselor", s.receiving_org),
        "sender_volunteer": actor("volunteer", home_org),
    }[who]
    # then neither list shows it, and answering it is NOT_FOUND
    assert await _received_ids(them) == []
    assert (await referrals.referrals_sent(them)).items == []
    with pytest.raises(DomainError) as err:
        await referrals.accept_referral(them, referral.id)
    assert err.value.code == "NOT_FOUND"


async def test_the_recipient_cannot_rewrite_the_referral_in_the_database(
    make: Factory, actor: Actor, home_org: int
) -> None:
    s = await _setup(make, actor, home_org)
    referral = await _send(s)
    with pytest.raises(Exception, match="may only answer or complete"):
        await s.recipient.session.execute(
            update(Referral).where(Referral.id == referral.id).values(summary="改写的摘要")
        )


async def test_referrals_are_never_deleted_in_the_database(make: Factory, actor: Actor, home_org: int) -> None:
    s = await _setup(make, actor, home_org)
    referral = await _send(s)
    await referrals.revoke_referral(s.sender, referral.id)
    await s.sender.session.commit()
    # when the sender deletes it (revoked, even) in the database directly; then the database refuses
    with pytest.raises(Exception, match="never deleted"):
        await s.sender.session.execute(delete(Referral).where(Referral.id == referral.id))
    await s.sender.session.rollback()
    assert await _count(make) == 1


async def test_a_referral_goes_only_to_the_organisation_its_consent_names_in_the_database(
    make: Factory, actor: Actor, home_org: int
) -> None:
    # given a consent for counseling at the agency, and another organisation using counseling
    s = await _setup(make, actor, home_org)
    elsewhere = (await make.organization_using("counseling")).id
    # when the sender writes a referral under that consent to the other organisation, bypassing the service
    s.sender.session.add(
        Referral(
            organization_id=home_org,
            resident_id=s.resident_id,
            consent_id=s.consent_id,
            source_plugin="core",
            target_plugin="counseling",
            target_organization_id=elsewhere,
            summary="x",
            sent_by="probe",
            sent_at=s.sender.now(),
        )
    )
    # then the database refuses it, and nothing is written
    with pytest.raises(Exception, match="fk_referrals_consent_target"):
        await s.sender.session.flush()
    await s.sender.session.rollback()
    assert await _count(make) == 0


async def test_accept_and_revoke_racing_end_in_one_consistent_order(
    make: Factory, actor: Actor, home_org: int, db_url: URL
) -> None:
    s = await _setup(make, actor, home_org)
    sender_viewer, recipient_viewer = s.sender.viewer, s.recipient.viewer

    async def round_(racer: Racer) -> None:
        referral = await _send(s)

        async def work(ctx: ServiceContext, i: int) -> str:
            from core import tenancy

            viewer = recipient_viewer if i == 0 else sender_viewer
            await tenancy.rebind(ctx.session, viewer)
            mine = ServiceContext(ctx.session, viewer, clock=ctx.clock, events=s.sender.events)
            if i == 0:
                await referrals.accept_referral(mine, referral.id)
            else:
                await referrals.revoke_referral(mine, referral.id)
            return "ok"

        accept, revoke = await racer.race(work, viewer=sender_viewer)
        row = await make.ctx.session.get(Referral, referral.id, populate_existing=True)
        await make.ctx.session.commit()
        assert row is not None
        assert (row.status, revoke) == ("revoked", "ok")
        if accept == "ok":  # accepted first, then revoked: both steps recorded
            assert row.answered_at is not None
        else:  # revoked first: the recipient no longer saw it, and nothing of the acceptance was written
            assert (accept, row.answered_at) == ("NOT_FOUND", None)

    async with Racer.open(db_url, workers=2) as racer:
        for _ in range(rounds(5)):
            await round_(racer)


class Recording:
    """The plugin host, remembering every event published through it (relations and targets still come from
    the host)."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.call_each = host.call_each
        self.events: list[Any] = []

    async def publish(self, event: Any, ctx: ServiceContext) -> None:
        self.events.append(event)
        await self.host.publish(event, ctx)


async def test_revoking_a_consent_revokes_its_live_referrals_and_tells_each_recipient(
    make: Factory, actor: Actor, home_org: int
) -> None:
    # given, under one consent, a sent, an accepted and a declined referral, and a sent one under another consent
    s = await _setup(make, actor, home_org)
    sent, accepted, declined = await _send(s), await _send(s), await _send(s)
    await referrals.accept_referral(s.recipient, accepted.id)
    await referrals.decline_referral(s.recipient, declined.id, reason="无空档")
    await s.recipient.session.commit()
    second = await consent.record_consent(
        s.sender,
        resident_id=s.resident_id,
        scopes=["summary"],
        target="counseling",
        target_organization_id=s.receiving_org,
        purpose="另一次",
    )
    await s.sender.session.commit()
    untouched = await _send(s, consent_id=second.id)
    recording = Recording(s.sender.events)
    sender = ServiceContext(s.sender.session, s.sender.viewer, clock=s.sender.clock, events=recording)
    # when the resident withdraws the first consent
    await consent.revoke_consent(sender, s.consent_id, reason="不再同意")
    await sender.session.commit()
    # then its live referrals are revoked, saying why, in the same transaction; the answered one and the other
    # consent's referral keep their status
    rows = {r.id: r for r in (await referrals.referrals_sent(sender)).items}
    await sender.session.commit()
    assert {i: (rows[i].status, rows[i].revoke_reason) for i in (sent.id, accepted.id)} == {
        sent.id: ("revoked", referrals.CONSENT_REVOKED),
        accepted.id: ("revoked", referrals.CONSENT_REVOKED),
    }
    assert rows[sent.id].revoked_by == sender.viewer.label
    assert (rows[declined.id].status, rows[untouched.id].status) == ("declined", "sent")
    # and each recipient was told, once per revoked referral, in the receiving organisation's name
    told = [
        (e.referral_id, e.organization_id, e.target_plugin, e.sending_organization_id)
        for e in recording.events
        if isinstance(e, events.ReferralRevoked)
    ]
    assert sorted(told) == [
        (sent.id, s.receiving_org, "counseling", home_org),
        (accepted.id, s.receiving_org, "counseling", home_org),
    ]
    # and the recipient now sees only the referral under the other consent
    assert await _received_ids(s.recipient) == [untouched.id]


async def test_accept_and_consent_revocation_racing_end_in_one_consistent_order(
    make: Factory, actor: Actor, home_org: int, db_url: URL
) -> None:
    s = await _setup(make, actor, home_org)
    sender_viewer, recipient_viewer = s.sender.viewer, s.recipient.viewer

    async def round_(racer: Racer, head_start: float) -> None:
        # a fresh consent and a referral under it each round
        given = await consent.record_consent(
            s.sender,
            resident_id=s.resident_id,
            scopes=["summary"],
            target="counseling",
            target_organization_id=s.receiving_org,
            purpose="心理支持",
        )
        await s.sender.session.commit()
        referral = await _send(s, consent_id=given.id)

        async def work(ctx: ServiceContext, i: int) -> str:
            from core import tenancy

            viewer = recipient_viewer if i == 0 else sender_viewer
            await tenancy.rebind(ctx.session, viewer)
            mine = ServiceContext(ctx.session, viewer, clock=ctx.clock, events=s.sender.events)
            if i == 0:
                # The revocation reads the consent before it locks anything: a varying head start lets it
                # win some rounds, so both orders (and the moments between) are tried.
                await asyncio.sleep(head_start)
                await referrals.accept_referral(mine, referral.id)
            else:
                await consent.revoke_consent(mine, given.id, reason="撤回")
            return "ok"

        # when the recipient accepts while the resident's consent is revoked (any other error fails the round)
        accept, revoke = await racer.race(work, viewer=sender_viewer)
        row = await make.ctx.session.get(Referral, referral.id, populate_existing=True)
        await make.ctx.session.commit()
        assert row is not None
        # then the revocation always succeeds and ends the referral
        assert (revoke, row.status, row.revoke_reason) == ("ok", "revoked", referrals.CONSENT_REVOKED)
        if accept == "ok":  # accepted first, then revoked with its consent: both steps recorded
            assert row.answered_at is not None
        else:  # revoked first: the referral left the recipient's view, nothing of the acceptance was written
            assert (accept, row.answered_at) == ("NOT_FOUND", None)

    async with Racer.open(db_url, workers=2) as racer:
        for n in range(rounds(6)):
            await round_(racer, HEAD_STARTS[n % len(HEAD_STARTS)])
