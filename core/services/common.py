"""Helpers every service uses: loading by id, row locks, translating constraint violations."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from core.errors import DomainError, NotFound
from core.services.context import ServiceContext

M = TypeVar("M")
log = logging.getLogger("yunshegong.db")


async def get(
    ctx: ServiceContext,
    model: type[M],
    id_: int,
    *,
    what: str,
    field: Sequence[str] = ("id",),
    lock: bool = False,
    scope: ColumnElement[bool] | None = None,
) -> M:
    """The row with this primary key, or NotFound. `lock` takes a row lock (SELECT … FOR UPDATE); `scope`
    (an access rule) makes rows the viewer may not see answer NotFound as well."""
    stmt = select(model).where(model.id == id_)  # type: ignore[attr-defined]
    if scope is not None:
        stmt = stmt.where(scope)
    if lock:
        # populate_existing: a locked read must see the committed row, not a stale identity-map copy.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = (await ctx.session.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise NotFound(what, field)
    return row


def _pg_attribute(exc: DBAPIError, name: str) -> str | None:
    """An attribute of asyncpg's exception behind SQLAlchemy's wrapper (sqlstate, constraint_name, detail …)."""
    orig: Any = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        value = getattr(candidate, name, None)
        if value:
            return str(value)
    return None


def constraint_name(exc: DBAPIError) -> str | None:
    """The violated constraint's name from asyncpg's exception behind SQLAlchemy's wrapper."""
    return _pg_attribute(exc, "constraint_name")


# Violations that can happen under a race even after the services' own checks; each maps to the
# user error the check would have given.
CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "uq_volunteers_organization_id_phone": (
        "ALREADY_EXISTS",
        "A volunteer with this phone number exists already.",
        ("input", "phone"),
    ),
    "uq_communities_organization_id_district_id_name": (
        "ALREADY_EXISTS",
        "This district has a community of that name.",
        ("input", "name"),
    ),
    "ck_volunteers_capacity": (
        "VOLUNTEER_AT_CAPACITY",
        "The volunteer already holds their maximum of active assignments.",
        None,
    ),
    "uq_assignments_active_pair": (
        "ALREADY_ASSIGNED",
        "The volunteer already holds an active assignment on this request.",
        None,
    ),
    "uq_community_liaisons_community_id_volunteer_id": (
        "ALREADY_EXISTS",
        "The volunteer is on this community's liaison team already.",
        None,
    ),
    "tenant_same_organization": (
        "ORGANIZATION_MISMATCH",
        "These records belong to different organisations.",
        None,
    ),
    "uq_accounts_username": ("ALREADY_EXISTS", "This username is taken.", ("input", "username")),
    "uq_accounts_volunteer_id": (
        "ALREADY_EXISTS",
        "This volunteer record has an account already.",
        ("input", "volunteerId"),
    ),
    "uq_districts_name": ("ALREADY_EXISTS", "A district of that name exists already.", ("input", "name")),
    "uq_organizations_name": ("ALREADY_EXISTS", "An organisation of that name exists already.", ("input", "name")),
    "uq_volunteer_trainings_volunteer_id_training_id": (
        "ALREADY_EXISTS",
        "The volunteer has completed this training already.",
        None,
    ),
    # Two active appointments of one person never overlap (core.services.scheduling books them).
    "ex_appointments_no_overlap": ("SLOT_TAKEN", "This person is already booked then.", ("input", "start")),
}


def sqlstate(exc: DBAPIError) -> str | None:
    return _pg_attribute(exc, "sqlstate")


# Row-level security refused a write naming a row of another organisation (an INSERT … ON CONFLICT on a
# hidden row, a child of a hidden parent). Such a row answers exactly like a missing one.
INSUFFICIENT_PRIVILEGE = "42501"


ConstraintErrors = Mapping[str, tuple[str, str, tuple[str, ...] | None]]


def domain_error_for(exc: DBAPIError, known: ConstraintErrors | None = None) -> DomainError | None:
    """The user error a database refusal stands for, or None for an unexpected failure. `known`: a
    plugin's own constraints (name -> code, message, field), consulted before core's. A constraint nobody
    named still gets a typed answer from its kind (generic_error_for), so no refusal of the data reaches a
    client as an internal error."""
    if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
        return DomainError("NOT_FOUND", "Not found.", None)
    name = constraint_name(exc) or ""
    found = (known or {}).get(name) or CONSTRAINT_ERRORS.get(name)
    if found is not None:
        code, message, field = found
        return DomainError(code, message, field)
    return generic_error_for(exc)


# Data exceptions (SQLSTATE class 22) that say a value is too large, too long or too far, not malformed.
_TOO_FAR = frozenset({"22001", "22003", "22008", "22015", "22020"})
# What a value a client sent can make PostgreSQL refuse: the kinds above, a malformed date-time (22007), a
# character the database cannot hold (22021, 22P05), asyncpg refusing to encode a value (22000), and the
# integrity violations a duplicate, a dangling ID or a rule on a value cause. Everything else of classes 22
# and 23 (division by zero, a bad cast in SQL the service wrote, a NOT NULL a service forgot to fill) is a
# fault of the service: it stays an internal error, logged with its traceback.
_CLIENT_CAUSED = _TOO_FAR | {"22000", "22007", "22021", "22P05", "23505", "23P01", "23503", "23514"}


def generic_error_for(exc: DBAPIError) -> DomainError | None:
    """The typed error for an integrity violation (class 23) or a data exception (class 22) by its kind,
    addressed to the input field named like the column where the database says which: ALREADY_EXISTS
    (unique, exclusion), NOT_FOUND (a reference to nothing), INVALID_INPUT or
    OUT_OF_RANGE (check constraints, values PostgreSQL cannot take). None for anything else (a lost
    connection, a deadlock, a bug, a data exception no client value causes): that stays an internal error."""
    state = sqlstate(exc) or ""
    if state not in _CLIENT_CAUSED:
        return None
    field = _field_at_fault(exc, state)
    log.info("database refused a value: SQLSTATE %s, constraint %s", state, constraint_name(exc))
    if state == "23505":
        return DomainError("ALREADY_EXISTS", "A record with the same value exists already.", field)
    if state == "23P01":
        return DomainError("ALREADY_EXISTS", "This conflicts with an existing record.", field)
    if state == "23503":
        if "still referenced" in (_pg_attribute(exc, "detail") or ""):
            return DomainError("INVALID_TRANSITION", "Other records still refer to this one.", None)
        return DomainError("NOT_FOUND", "A record this refers to does not exist.", field)
    if state == "23514":
        malformed = (constraint_name(exc) or "").endswith("_valid")
        return DomainError(
            "INVALID_INPUT" if malformed else "OUT_OF_RANGE", "A value is outside what is allowed.", field
        )
    message = str(getattr(exc.orig, "__cause__", None) or exc.orig or "")
    if state in _TOO_FAR or ("out of" in message and "range" in message):
        return DomainError("OUT_OF_RANGE", "A value is too large, too long or too far off to store.", field)
    return DomainError("INVALID_INPUT", "A value cannot be stored as given.", field)


# "Key (organization_id, lower(name))=(…) already exists." / "Key (volunteer_id)=(…) is not present …"
_KEY_COLUMNS = re.compile(r"^Key \((.+?)\)=\(")
_IDENTIFIER = re.compile(r"^\w+$|\((\w+)\)$")


def _field_at_fault(exc: DBAPIError, state: str) -> tuple[str, ...] | None:
    """("input", <camelCase column>) for the column a violation names: from the key in the message's detail,
    the column (not null), or else the constraint's conventional name (core.database.NAMING_CONVENTION:
    `uq_<table>_<columns>`, `fk_<table>_<column>_<referred table>`, `ck_<table>_<column>_…`) -- PostgreSQL
    leaves the detail out on tables under row-level security. The organisation column is the caller's own,
    never the field at fault; a key of several columns names its last."""
    columns: list[str] = []
    key = _KEY_COLUMNS.match(_pg_attribute(exc, "detail") or "")
    if key:
        for part in key.group(1).split(", "):
            found = _IDENTIFIER.search(part.strip())
            if found:
                columns.append(found.group(1) or found.group(0))
    elif _pg_attribute(exc, "column_name"):
        columns.append(str(_pg_attribute(exc, "column_name")))
    else:
        columns = _columns_in_name(exc)
        if state != "23505":
            columns = columns[:1]  # a foreign key or check names one column, then something else
    columns = [c for c in columns if c != "organization_id"]
    return ("input", _camel(columns[-1])) if columns else None


def _columns_in_name(exc: DBAPIError) -> list[str]:
    """The columns a conventional constraint name lists after its table, longest match first."""
    from core.database import Base

    table_name = _pg_attribute(exc, "table_name") or ""
    table = Base.metadata.tables.get(table_name)
    name = constraint_name(exc) or ""
    if table is None:
        return []
    prefixes = [f"{kind}_{table_name}_" for kind in ("uq", "fk", "ck")]
    rest = next((name[len(p) :] for p in prefixes if name.startswith(p)), "")
    known = sorted((c.name for c in table.columns), key=len, reverse=True)
    columns: list[str] = []
    while rest:
        column = next((c for c in known if rest == c or rest.startswith(f"{c}_")), None)
        if column is None:
            break
        columns.append(column)
        rest = rest[len(column) + 1 :]
    return columns


def _camel(column: str) -> str:
    head, *rest = column.split("_")
    return head + "".join(part.capitalize() for part in rest)


async def flush(ctx: ServiceContext, known: ConstraintErrors | None = None) -> None:
    """Flush pending writes, turning known constraint violations (core's, and `known`) and row-level
    security's refusals into user errors."""
    try:
        await ctx.session.flush()
    except DBAPIError as exc:
        error = domain_error_for(exc, known)
        if error is None:
            raise
        raise error from exc
