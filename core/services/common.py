"""Helpers every service uses: loading by id, row locks, translating constraint violations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from core.errors import DomainError, NotFound
from core.services.context import ServiceContext

M = TypeVar("M")


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


def constraint_name(exc: DBAPIError) -> str | None:
    """The violated constraint's name from asyncpg's exception behind SQLAlchemy's wrapper."""
    orig: Any = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if name:
            return str(name)
    return None


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
}


def sqlstate(exc: DBAPIError) -> str | None:
    orig: Any = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if state:
            return str(state)
    return None


# Row-level security refused a write naming a row of another organisation (an INSERT … ON CONFLICT on a
# hidden row, a child of a hidden parent). Such a row answers exactly like a missing one.
INSUFFICIENT_PRIVILEGE = "42501"


ConstraintErrors = Mapping[str, tuple[str, str, tuple[str, ...] | None]]


def domain_error_for(exc: DBAPIError, known: ConstraintErrors | None = None) -> DomainError | None:
    """The user error a database refusal stands for, or None for an unexpected failure. `known`: a
    plugin's own constraints (name -> code, message, field), consulted before core's."""
    if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
        return DomainError("NOT_FOUND", "Not found.", None)
    if isinstance(exc, IntegrityError):
        name = constraint_name(exc) or ""
        found = (known or {}).get(name) or CONSTRAINT_ERRORS.get(name)
        if found is not None:
            code, message, field = found
            return DomainError(code, message, field)
    return None


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
