"""Invariants the database keeps by itself, checked by writing straight into the tables (no service in the way):
each test here fails when `make schema-mutation` drops the object that guards it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.models import Organization
from core.services import assignments
from core.vocab import AssignmentStatus, RequestStatus
from tests.factories import Factory

UNIQUE_VIOLATION = "23505"

INSERT_ASSIGNMENT = text(
    "INSERT INTO assignments (request_id, volunteer_id, status, note, decline_reason, offered_at) "
    "VALUES (:r, :v, 'offered', '', '', now())"
)


def _refusal(err: pytest.ExceptionInfo[IntegrityError]) -> tuple[str, str]:
    """(SQLSTATE, constraint name) of a refused write, read from the driver's error, not its message."""
    orig: Any = err.value.orig
    cause: Any = orig.__cause__ or orig
    return (getattr(orig, "sqlstate", None) or cause.sqlstate, getattr(cause, "constraint_name", ""))


async def test_database_refuses_a_second_active_assignment_of_one_volunteer_to_one_request(make: Factory) -> None:
    # given a volunteer with room for several, offered to a request once
    volunteer_id = (await make.volunteer(max_concurrent_assignments=3)).id
    request_id = (await make.request(status=RequestStatus.VERIFIED)).id
    await assignments.offer(make.ctx, request_id, volunteer_id)
    await make.commit()
    # when a second active assignment of the same pair is written straight into the table
    with pytest.raises(IntegrityError) as err:
        await make.ctx.session.execute(INSERT_ASSIGNMENT, {"r": request_id, "v": volunteer_id})
    await make.ctx.session.rollback()
    # then the unique index refuses it and the pair holds one assignment
    assert _refusal(err) == (UNIQUE_VIOLATION, "uq_assignments_active_pair")
    count = "SELECT count(*) FROM assignments WHERE request_id = :r AND volunteer_id = :v"
    assert await make.ctx.session.scalar(text(count), {"r": request_id, "v": volunteer_id}) == 1


async def test_a_volunteer_may_be_offered_again_once_the_earlier_assignment_ended(make: Factory) -> None:
    # given a volunteer who declined a request
    volunteer_id = (await make.volunteer(max_concurrent_assignments=3)).id
    request_id = (await make.request(status=RequestStatus.VERIFIED)).id
    first = await assignments.offer(make.ctx, request_id, volunteer_id)
    await assignments.decline(make.ctx, first.id, "busy today")
    await make.commit()
    # when the pair is offered again
    await make.ctx.session.execute(INSERT_ASSIGNMENT, {"r": request_id, "v": volunteer_id})
    await make.commit()
    # then there are two assignments, one of them active (only active pairs are unique)
    rows = await make.ctx.session.execute(
        text("SELECT status FROM assignments WHERE request_id = :r AND volunteer_id = :v ORDER BY id"),
        {"r": request_id, "v": volunteer_id},
    )
    assert [r.status for r in rows] == [AssignmentStatus.DECLINED.value, AssignmentStatus.OFFERED.value]


async def test_plain_sql_reads_only_its_own_organisations_audit_trail(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, home_org: int
) -> None:
    # given audit entries of two organisations
    other = Organization(name="乙机构", kind="agency")
    make.ctx.session.add(other)
    await make.commit()
    orgs = (home_org, other.id)
    async with owner_engine.begin() as conn:
        for org, n in zip(orgs, (2, 3), strict=True):
            for _ in range(n):
                await conn.execute(
                    text(
                        "INSERT INTO audit_log (at, actor, organization_id, action, operation)"
                        " VALUES (now(), 'someone', :org, 'write', 'testAuditRead')"
                    ),
                    {"org": org},
                )
    for me, mine in zip(orgs, (2, 3), strict=True):
        # when the app role reads the trail with plain SQL as an administrator of one of them
        async with engine.connect() as conn, conn.begin() as tx:
            await conn.execute(
                text("SELECT set_config('app.org_id', :org, true), set_config('app.role', 'organization_admin', true)"),
                {"org": str(me)},
            )
            seen = await conn.execute(
                text("SELECT organization_id, count(*) FROM audit_log WHERE operation = 'testAuditRead' GROUP BY 1")
            )
            # then it sees its own organisation's entries and none of the other's
            assert {int(org): int(n) for org, n in seen} == {me: mine}
            await tx.rollback()
