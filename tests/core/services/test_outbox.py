"""The one outbox (core.notify): recipients with and without an account, deduplication, organisations."""

from __future__ import annotations

import pytest

from core.database import create_sessionmaker
from core.errors import DomainError
from core.services.context import ServiceContext, Viewer
from core.services.outbox import Recipient, notify, pending
from tests.factories import Factory


def _member(org_id: int) -> Viewer:
    return Viewer(label="staff", role="organization_admin", organization_id=org_id)


async def _pending(engine, org_id: int) -> list[tuple[str, str, int | None, str]]:  # type: ignore[no-untyped-def]
    async with create_sessionmaker(engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=_member(org_id))
        return [(n.kind, n.recipient_phone, n.volunteer_id, n.source) for n in await pending(ctx)]


async def test_messages_to_people_with_and_without_an_account_belong_to_an_organisation(make: Factory, engine) -> None:  # type: ignore[no-untyped-def]
    # given two organisations and a volunteer of the first
    a = await make.organization_using("maternal_care", "甲机构")
    b = await make.organization_using("maternal_care", "乙机构")
    volunteer = await make.in_org(a.id).volunteer()
    await make.commit()
    # when a member of A queues a reminder to a mother (no account) and one to the volunteer
    async with create_sessionmaker(engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=_member(a.id))
        mother = Recipient.person("李女士", "13900001111")
        assert await notify(ctx, "maternal_care.reminder", mother, {"lecture": 1}, source="maternal_care")
        assert await notify(ctx, "offer", Recipient.volunteer(volunteer.id))
    # then A's outbox holds both, B's holds nothing of them
    assert sorted(await _pending(engine, a.id)) == [
        ("maternal_care.reminder", "13900001111", None, "maternal_care"),
        ("offer", "", volunteer.id, "core"),
    ]
    assert await _pending(engine, b.id) == []


async def test_a_dedupe_key_queues_a_message_once_per_organisation(make: Factory, engine) -> None:  # type: ignore[no-untyped-def]
    a = await make.organization_using("maternal_care", "甲机构")
    b = await make.organization_using("maternal_care", "乙机构")
    outcomes = []
    for org in (a.id, a.id, b.id):
        async with create_sessionmaker(engine)() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=_member(org))
            outcomes.append(
                await notify(
                    ctx,
                    "maternal_care.day3",
                    Recipient.person("王女士", "13900003333"),
                    source="maternal_care",
                    dedupe_key="visit:7:day3",
                )
            )
    # the second call in A queued nothing; B's own key is its own
    assert outcomes == [True, False, True]
    assert len(await _pending(engine, a.id)) == len(await _pending(engine, b.id)) == 1


@pytest.mark.parametrize(
    ("kind", "recipient", "source", "field"),
    [
        ("offer", Recipient(), "core", "recipient"),
        ("offer", Recipient(volunteer_id=1, phone="13900001111"), "core", "recipient"),
        ("reminder", Recipient.person("李女士", "13900001111"), "maternal_care", "kind"),
    ],
)
async def test_a_malformed_message_is_refused(
    ctx: ServiceContext, kind: str, recipient: Recipient, source: str, field: str
) -> None:
    with pytest.raises(DomainError) as refused:
        await notify(ctx, kind, recipient, source=source)
    assert (refused.value.code, refused.value.errors[0].field) == ("INVALID_INPUT", (field,))
