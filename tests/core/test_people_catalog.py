"""The database rules of migration 0012 (residents, consents, referrals), each proven to matter.

A schema-mutation check (decisions.md, "Proofs that prove something"), run in the ordinary suite: for each
policy, trigger or function that guards an invariant, a probe -- the same check the service tests make,
in SQL as the app role acting for one organisation -- must hold on the migrated schema, and must NOT hold
once that one object is dropped (or, for a function a policy depends on, weakened). The drop happens as
the migrating owner inside a transaction that is rolled back, so the database is unchanged afterwards and
the check costs milliseconds, not a migrated database per mutation (tests/schema_mutations.py, which runs
whole test files against a mutated database, gets the same objects as entries too; see the report).

`test_every_people_guard_is_mutated` fails when 0012 installs a trigger or policy no mutation names.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.services import consent, referrals, residents
from core.tenancy import APP_ROLE
from tests.core.services import test_residents
from tests.core.services.test_residents import Actor
from tests.factories import Factory

actor = test_residents.actor
TABLES = ("residents", "consents", "referrals")


@dataclass
class People:
    home: int  # the sending organisation
    agency: int  # receives referrals to counseling
    third: int  # an unrelated organisation using counseling
    resident: int
    live: int  # sent, consent in force: the agency sees it
    live_consent: int  # the consent the live referral was sent under
    accepted: int  # accepted by the agency, consent (summary only) in force
    revoked: int  # revoked by the sender
    unconsented: int  # its consent was revoked
    withdrawn: int  # that revoked consent
    spare_consent: int  # no referral under it (deletable but for the trigger)
    third_resident: int
    third_consent: int
    third_community: int


@pytest.fixture
async def people(make: Factory, actor: Actor, home_org: int, owner_engine: AsyncEngine) -> People:
    agency = (await make.organization_using("counseling")).id
    third = (await make.organization_using("counseling")).id
    third_community = (await make.in_org(third).community()).id
    sender = actor("social_worker", home_org)
    recipient = actor("counselor", agency, "counseling.manage")
    resident = await residents.create_resident(sender, name="王阿姨", community_id=None, phone="13900001111")
    test_residents.serve(sender, resident.id)

    async def refer() -> tuple[int, int]:
        given = await consent.record_consent(
            sender,
            resident_id=resident.id,
            scopes=["summary"],
            target="counseling",
            target_organization_id=agency,
            purpose="心理支持",
        )
        sent = await referrals.send_referral(
            sender,
            resident_id=resident.id,
            consent_id=given.id,
            summary="摘要",
            target_plugin="counseling",
            target_organization_id=agency,
        )
        return sent.id, given.id

    live, live_consent = await refer()
    accepted, _ = await refer()
    revoked, _ = await refer()
    unconsented, withdrawn = await refer()
    await referrals.revoke_referral(sender, revoked)
    await sender.session.commit()
    # A consent ended by a path other than `revoke_consent` (which also revokes its referrals): its referral
    # stays live, and only the database's consent condition hides it from the recipient.
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE consents SET revoked_at = now(), revoked_by = 'fixture' WHERE id = :id"), {"id": withdrawn}
        )
    spare = await consent.record_consent(
        sender,
        resident_id=resident.id,
        scopes=["summary"],
        target="counseling",
        target_organization_id=agency,
        purpose="备用",
    )
    await sender.session.commit()
    await referrals.accept_referral(recipient, accepted)
    await recipient.session.commit()
    outsider = actor("social_worker", third)
    theirs = await residents.create_resident(outsider, name="李大爷", community_id=None)
    test_residents.serve(outsider, theirs.id)
    their_consent = await consent.record_consent(
        outsider,
        resident_id=theirs.id,
        scopes=["summary"],
        target="counseling",
        target_organization_id=agency,
        purpose="x",
    )
    await outsider.session.commit()
    for ctx in (sender, recipient, outsider):
        await ctx.session.close()  # no open transaction may wait on the owner's DDL below
    return People(
        home_org,
        agency,
        third,
        resident.id,
        live,
        live_consent,
        accepted,
        revoked,
        unconsented,
        withdrawn,
        spare.id,
        theirs.id,
        their_consent.id,
        third_community,
    )


Probe = Callable[[AsyncConnection, People], Awaitable[bool]]


async def _act_as(conn: AsyncConnection, organization: int, role: str) -> None:
    await conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
    await conn.execute(
        text("SELECT set_config('app.org_id', :org, true), set_config('app.role', :role, true)"),
        {"org": str(organization), "role": role},
    )


async def _refused(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> bool:
    """Whether the statement fails (in a savepoint, so the probe's transaction goes on)."""
    try:
        async with conn.begin_nested():
            await conn.execute(text(sql), params)
    except Exception:
        return True
    return False


# -- probes: True when the invariant holds ------------------------------------------------------------------------


async def recipient_sees_exactly_the_live_referrals(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.agency, "counselor")
    seen = set((await conn.execute(text("SELECT id FROM referrals"))).scalars())
    return seen == {p.live, p.accepted}


async def recipient_answers_only_live_referrals(conn: AsyncConnection, p: People) -> bool:
    # No WHERE clause: an UPDATE that reads no column is filtered by the UPDATE policies alone (with a WHERE,
    # the SELECT policy would filter too). The live and the accepted referral, not the revoked one nor the
    # one whose consent ended.
    # The recipient guard (probed on its own below) would refuse declining the accepted one: off for this probe.
    await conn.execute(text("ALTER TABLE referrals DISABLE TRIGGER referrals_recipient_guard"))
    await _act_as(conn, p.agency, "counselor")
    answered = await conn.execute(text("UPDATE referrals SET status = 'declined', decline_reason = 'probe'"))
    return answered.rowcount == 2


async def recipient_changes_only_the_answer(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.agency, "counselor")
    rewrite = await _refused(conn, "UPDATE referrals SET summary = '改写' WHERE id = :id", {"id": p.live})
    withdraw = await _refused(conn, "UPDATE referrals SET status = 'revoked' WHERE id = :id", {"id": p.live})
    return rewrite and withdraw


async def consents_are_never_deleted(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.home, "social_worker")
    return await _refused(conn, "DELETE FROM consents WHERE id = :id", {"id": p.spare_consent})


async def a_consent_changes_only_by_its_revocation_once(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.home, "social_worker")
    widen = await _refused(
        conn, "UPDATE consents SET scopes = ARRAY['summary', 'health'] WHERE id = :id", {"id": p.spare_consent}
    )
    unrevoke = await _refused(
        conn, "UPDATE consents SET revoked_at = NULL, revoked_by = NULL WHERE id = :id", {"id": p.withdrawn}
    )
    # the control: the revocation itself is written
    revoke = not await _refused(
        conn,
        "UPDATE consents SET revoked_at = now(), revoked_by = 'probe', revoke_reason = 'x' WHERE id = :id",
        {"id": p.spare_consent},
    )
    return widen and unrevoke and revoke


async def referrals_are_never_deleted(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.home, "social_worker")
    return await _refused(conn, "DELETE FROM referrals WHERE id = :id", {"id": p.revoked})


async def the_recipient_answers_one_step_at_a_time(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.agency, "counselor")
    skip = await _refused(
        conn,
        "UPDATE referrals SET status = 'completed', completed_by = 'probe', completed_at = now() WHERE id = :id",
        {"id": p.live},
    )
    reanswer = await _refused(
        conn, "UPDATE referrals SET status = 'declined', decline_reason = 'probe' WHERE id = :id", {"id": p.accepted}
    )
    # the control: the next step is taken
    step = not await _refused(
        conn,
        "UPDATE referrals SET status = 'accepted', answered_by = 'probe', answered_at = now() WHERE id = :id",
        {"id": p.live},
    )
    return skip and reanswer and step


async def the_consent_in_force_is_told_only_to_its_two_organisations(conn: AsyncConnection, p: People) -> bool:
    answers = []
    for organization in (p.home, p.agency, p.third):
        await _act_as(conn, organization, "organization_admin")
        answers.append(await conn.scalar(text("SELECT referral_consent_in_force(:c)"), {"c": p.live_consent}))
    return answers == [True, True, False]


async def a_consent_names_a_resident_of_its_own_organisation(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.home, "social_worker")
    return await _refused(
        conn,
        "INSERT INTO consents (organization_id, resident_id, scopes, target_kind, target, purpose, valid_from, "
        "recorded_by, target_organization_id) "
        "VALUES (:org, :r, ARRAY['summary'], 'plugin', 'counseling', 'x', now(), 'probe', :to)",
        {"org": p.home, "r": p.third_resident, "to": p.agency},
    )


_REFERRAL = (
    "INSERT INTO referrals (organization_id, resident_id, consent_id, source_plugin, target_plugin, "
    "target_organization_id, summary, sent_by, sent_at) "
    "VALUES (:org, :r, :c, 'core', 'counseling', :to, 'x', 'probe', now())"
)


async def a_referral_names_a_resident_of_its_own_organisation(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.home, "social_worker")
    # a resident of the third organisation, under a consent of the sender's own
    return await _refused(conn, _REFERRAL, {"org": p.home, "r": p.third_resident, "c": p.spare_consent, "to": p.agency})


async def a_referral_names_a_consent_of_its_own_organisation(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.home, "social_worker")
    # the sender's resident, under a consent of the third organisation
    # the sender's resident, under a consent of the third organisation, to an outside body (a referral to a
    # plugin's service would meet fk_referrals_consent_target too; an outside one meets this trigger alone)
    return await _refused(
        conn,
        "INSERT INTO referrals (organization_id, resident_id, consent_id, source_plugin, target_outside, summary, "
        "sent_by, sent_at) VALUES (:org, :r, :c, 'core', '妇联', 'x', 'probe', now())",
        {"org": p.home, "r": p.resident, "c": p.third_consent},
    )


async def a_referral_goes_to_the_organisation_its_consent_names(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.home, "social_worker")
    # the spare consent names the agency: a referral under it to the third organisation is refused
    elsewhere = await _refused(conn, _REFERRAL, {"org": p.home, "r": p.resident, "c": p.spare_consent, "to": p.third})
    # the control: to the agency it is written
    named = not await _refused(conn, _REFERRAL, {"org": p.home, "r": p.resident, "c": p.spare_consent, "to": p.agency})
    return elsewhere and named


async def a_resident_lives_in_a_community_of_its_organisation(conn: AsyncConnection, p: People) -> bool:
    await _act_as(conn, p.home, "social_worker")
    return await _refused(conn, "INSERT INTO residents (name, community_id) VALUES ('x', :c)", {"c": p.third_community})


async def the_shared_resident_is_for_the_recipient_and_the_consents_scopes(conn: AsyncConnection, p: People) -> bool:
    others = []
    # the sending organisation (whose volunteer does not see the resident) and an unrelated one get nothing
    for organization, role in ((p.home, "volunteer"), (p.third, "organization_admin")):
        await _act_as(conn, organization, role)
        others.append(await conn.scalar(text("SELECT referral_shared_resident(:id)"), {"id": p.accepted}))
    await _act_as(conn, p.agency, "counselor")
    mine = await conn.scalar(text("SELECT referral_shared_resident(:id)"), {"id": p.accepted})
    # the summary-only consent shares the name, not the phone
    return others == [None, None] and mine is not None and (mine["name"], mine["phone"]) == ("王阿姨", "")


# -- the mutations ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    name: str  # the object, as pg_policy / pg_trigger / pg_proc name it
    sql: str
    probe: Probe


def _migration() -> Any:
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0012_people.py"
    spec = importlib.util.spec_from_file_location("people_migration_0012", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


M = _migration()
RECIPIENT_CONDITION = "  AND r.target_organization_id = NULLIF(current_setting('app.org_id', true), '')::bigint\n"
CONTACT_CONDITION = "CASE WHEN 'contact' = ANY (c.scopes) THEN p.phone ELSE '' END"
assert RECIPIENT_CONDITION in M.SHARED_RESIDENT
assert CONTACT_CONDITION in M.SHARED_RESIDENT
ORGANISATION_CONDITION = (
    "      AND NULLIF(current_setting('app.org_id', true), '')::bigint"
    " IN (c.organization_id, c.target_organization_id)\n"
)
assert ORGANISATION_CONDITION in M.CONSENT_IN_FORCE
ONE_STEP = ("OLD.status = 'sent' AND ", "OLD.status = 'accepted' AND ")
assert all(condition in M.RECIPIENT_GUARD for condition in ONE_STEP)


MUTATIONS = [
    Mutation(
        "referral_received",
        "DROP POLICY referral_received ON referrals",
        recipient_sees_exactly_the_live_referrals,
    ),
    Mutation(
        "referral_received (status and consent conditions left out)",
        "DROP POLICY referral_received ON referrals;\n"
        "CREATE POLICY referral_received ON referrals FOR SELECT USING (target_organization_id = (SELECT app_org()))",
        recipient_sees_exactly_the_live_referrals,
    ),
    Mutation(
        "referral_consent_in_force",
        M.CONSENT_IN_FORCE.replace("c.revoked_at IS NULL AND ", ""),
        recipient_sees_exactly_the_live_referrals,
    ),
    Mutation(
        "referral_answer",
        "DROP POLICY referral_answer ON referrals",
        recipient_answers_only_live_referrals,
    ),
    Mutation(
        "referral_answer (status and consent conditions left out)",
        "DROP POLICY referral_answer ON referrals;\n"
        "CREATE POLICY referral_answer ON referrals FOR UPDATE USING (target_organization_id = (SELECT app_org())) "
        "WITH CHECK (target_organization_id = (SELECT app_org()))",
        recipient_answers_only_live_referrals,
    ),
    Mutation(
        "referrals_recipient_guard",
        "DROP TRIGGER referrals_recipient_guard ON referrals",
        recipient_changes_only_the_answer,
    ),
    Mutation(
        "referral_consent_in_force (organisation condition left out)",
        M.CONSENT_IN_FORCE.replace(ORGANISATION_CONDITION, ""),
        the_consent_in_force_is_told_only_to_its_two_organisations,
    ),
    Mutation(
        "referrals_recipient_guard (one step at a time left out)",
        M.RECIPIENT_GUARD.replace(ONE_STEP[0], "").replace(ONE_STEP[1], ""),
        the_recipient_answers_one_step_at_a_time,
    ),
    Mutation(
        "consents_revoke_only",
        "DROP TRIGGER consents_revoke_only ON consents",
        a_consent_changes_only_by_its_revocation_once,
    ),
    Mutation(
        "referrals_never_deleted",
        "DROP TRIGGER referrals_never_deleted ON referrals",
        referrals_are_never_deleted,
    ),
    Mutation(
        "fk_referrals_consent_target",
        "ALTER TABLE referrals DROP CONSTRAINT fk_referrals_consent_target",
        a_referral_goes_to_the_organisation_its_consent_names,
    ),
    Mutation(
        "consents_never_deleted",
        "DROP TRIGGER consents_never_deleted ON consents",
        consents_are_never_deleted,
    ),
    Mutation(
        "tenant_0_resident_id (consents)",
        "DROP TRIGGER tenant_0_resident_id ON consents",
        a_consent_names_a_resident_of_its_own_organisation,
    ),
    Mutation(
        "tenant_0_resident_id (referrals)",
        "DROP TRIGGER tenant_0_resident_id ON referrals",
        a_referral_names_a_resident_of_its_own_organisation,
    ),
    Mutation(
        "tenant_1_consent_id (referrals)",
        "DROP TRIGGER tenant_1_consent_id ON referrals",
        a_referral_names_a_consent_of_its_own_organisation,
    ),
    Mutation(
        "tenant_0_community_id (residents)",
        "DROP TRIGGER tenant_0_community_id ON residents",
        a_resident_lives_in_a_community_of_its_organisation,
    ),
    Mutation(
        "referral_shared_resident (recipient condition left out)",
        M.SHARED_RESIDENT.replace(RECIPIENT_CONDITION, ""),
        the_shared_resident_is_for_the_recipient_and_the_consents_scopes,
    ),
    Mutation(
        "referral_shared_resident (contact scope left out)",
        M.SHARED_RESIDENT.replace(CONTACT_CONDITION, "p.phone"),
        the_shared_resident_is_for_the_recipient_and_the_consents_scopes,
    ),
]


async def _run(owner: AsyncEngine, people: People, probe: Probe, mutation_sql: str | None) -> bool:
    async with owner.connect() as conn:
        tx = await conn.begin()
        try:
            await conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            # a function's body is one statement; other mutations may be several, one a line
            statements = [mutation_sql] if "$$" in (mutation_sql or "") else (mutation_sql or "").split(";\n")
            for statement in statements:
                if statement.strip():
                    await conn.execute(text(statement))
            return await probe(conn, people)
        finally:
            await tx.rollback()


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
async def test_each_guard_is_what_holds_its_invariant(
    owner_engine: AsyncEngine, people: People, mutation: Mutation
) -> None:
    # given the migrated schema, the invariant holds
    assert await _run(owner_engine, people, mutation.probe, None)
    # when the one object guarding it is dropped (in a transaction rolled back), the same probe fails
    assert not await _run(owner_engine, people, mutation.probe, mutation.sql), f"{mutation.name} survived"
    # and, rolled back, the invariant holds again
    assert await _run(owner_engine, people, mutation.probe, None)


async def test_every_people_guard_is_mutated(owner_engine: AsyncEngine) -> None:
    # given the policies and triggers of the people tables (row-level security's own tenant_isolation is
    # proven by the tenancy tests for every table)
    async with owner_engine.connect() as conn:
        policies = set(
            (
                await conn.execute(
                    text("SELECT policyname FROM pg_policies WHERE tablename = ANY(:t)"), {"t": list(TABLES)}
                )
            ).scalars()
        )
        triggers = set(
            (
                await conn.execute(
                    text(
                        "SELECT t.tgname || ' (' || c.relname || ')' FROM pg_trigger t JOIN pg_class c "
                        "ON c.oid = t.tgrelid WHERE c.relname = ANY(:t) AND NOT t.tgisinternal"
                    ),
                    {"t": list(TABLES)},
                )
            ).scalars()
        )
        constraints = set(
            (
                await conn.execute(
                    text(
                        "SELECT conname FROM pg_constraint WHERE conrelid = ANY(CAST(:t AS regclass[])) "
                        "AND contype = 'f' AND cardinality(conkey) > 1"
                    ),
                    {"t": list(TABLES)},
                )
            ).scalars()
        )
    assert {"referral_received", "referral_answer", "tenant_isolation"} <= policies
    assert {"consents_never_deleted (consents)", "referrals_recipient_guard (referrals)"} <= triggers
    assert {"consents_revoke_only (consents)", "referrals_never_deleted (referrals)"} <= triggers
    assert "fk_referrals_consent_target" in constraints
    mutated = {m.name.split(" (status")[0] for m in MUTATIONS}
    # then each one is mutated above
    assert policies - {"tenant_isolation"} <= mutated
    assert {t if t.startswith("tenant_") else t.split(" (")[0] for t in triggers} <= mutated
    # and so is each foreign key that ties more than one column (a rule across tables, not a plain reference)
    assert constraints <= mutated
