"""The records of what happened (request history, the audit trail, assignments) cannot be rewritten, deleted
or truncated, not even by the owner of the tables: the database refuses, whatever the services do.

The app role holds no TRUNCATE (nor UPDATE/DELETE on the audit trail) privilege at all, so the triggers are
what stops the one role that could: these tests act as the migrating owner (`owner_engine`)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.services import audit
from core.vocab import RequestStatus
from tests.factories import Factory

RESTRICT_VIOLATION = "23001"  # the SQLSTATE refuse_rewrite() raises


async def _refused(owner_engine: AsyncEngine, statement: str, **params: object) -> str:
    """Run `statement` as the owner in a transaction of its own; the SQLSTATE it was refused with."""
    with pytest.raises(DBAPIError) as err:
        async with owner_engine.begin() as conn:
            await conn.execute(text(statement), params)
    return getattr(err.value.orig, "sqlstate", None) or getattr(err.value.orig, "pgcode", "")


async def _count(owner_engine: AsyncEngine, query: str, **params: object) -> int:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text(query), params)).scalar_one()


async def test_request_history_cannot_be_truncated_even_by_the_owner(make: Factory, owner_engine: AsyncEngine) -> None:
    # given a request with a history (submitted, verified)
    rid = (await make.request(status=RequestStatus.VERIFIED)).id
    # when the tables' owner truncates the history
    code = await _refused(owner_engine, "TRUNCATE help_request_status_changes")
    # then it is refused and every row is still there
    assert code == RESTRICT_VIOLATION
    count = "SELECT count(*) FROM help_request_status_changes WHERE request_id = :id"
    assert await _count(owner_engine, count, id=rid) == 2


async def test_request_history_cannot_be_rewritten_or_deleted_by_the_owner(
    make: Factory, owner_engine: AsyncEngine
) -> None:
    # given a request with one history row
    rid = (await make.request()).id
    # when the owner updates or deletes it
    update = "UPDATE help_request_status_changes SET actor = 'someone else' WHERE request_id = :id"
    delete = "DELETE FROM help_request_status_changes WHERE request_id = :id"
    # then both are refused and the row is unchanged
    assert await _refused(owner_engine, update, id=rid) == RESTRICT_VIOLATION
    assert await _refused(owner_engine, delete, id=rid) == RESTRICT_VIOLATION
    actors = "SELECT count(*) FROM help_request_status_changes WHERE request_id = :id AND actor = 'test coordinator'"
    assert await _count(owner_engine, actors, id=rid) == 1


async def _audited(make: Factory) -> int:
    await audit.append(make.ctx, audit.AuditRecord(action="write", operation="testAppendOnly", detail="evidence"))
    await make.commit()
    return 1


async def test_audit_trail_cannot_be_truncated_even_by_the_owner(make: Factory, owner_engine: AsyncEngine) -> None:
    # given an entry in the audit trail
    await _audited(make)
    before = await _count(owner_engine, "SELECT count(*) FROM audit_log")
    assert before >= 1
    # when the owner truncates it
    code = await _refused(owner_engine, "TRUNCATE audit_log")
    # then it is refused and nothing is lost
    assert code == RESTRICT_VIOLATION
    assert await _count(owner_engine, "SELECT count(*) FROM audit_log") == before


async def test_audit_trail_cannot_be_rewritten_or_deleted_by_the_owner(
    make: Factory, owner_engine: AsyncEngine
) -> None:
    # given an entry in the audit trail
    await _audited(make)
    mine = "operation = 'testAppendOnly'"
    # when the owner edits or deletes it
    update = f"UPDATE audit_log SET detail = 'nothing happened' WHERE {mine}"
    delete = f"DELETE FROM audit_log WHERE {mine}"
    # then both are refused and the entry reads as written
    assert await _refused(owner_engine, update) == RESTRICT_VIOLATION
    assert await _refused(owner_engine, delete) == RESTRICT_VIOLATION
    assert await _count(owner_engine, f"SELECT count(*) FROM audit_log WHERE {mine} AND detail = 'evidence'") == 1


async def test_assignments_cannot_be_deleted_even_by_the_owner(make: Factory, owner_engine: AsyncEngine) -> None:
    # given a matched request (one offered assignment)
    rid = (await make.request(status=RequestStatus.MATCHED)).id
    # when the owner deletes its assignments
    code = await _refused(owner_engine, "DELETE FROM assignments WHERE request_id = :id", id=rid)
    # then it is refused and the assignment is still there
    assert code == RESTRICT_VIOLATION
    assert await _count(owner_engine, "SELECT count(*) FROM assignments WHERE request_id = :id", id=rid) == 1


async def test_the_stock_ledger_cannot_be_truncated_even_by_the_owner(
    owner_engine: AsyncEngine, db_url: object
) -> None:
    # when the tables' owner truncates the supplies ledger
    code = await _refused(owner_engine, "TRUNCATE supplies_movements CASCADE")
    # then it is refused (corrections are new movements, never a wiped ledger)
    assert code == RESTRICT_VIOLATION
