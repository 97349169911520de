"""Per-request DataLoaders: every nested field is one batched query per level, never one per parent.

A loader set lives exactly as long as one GraphQL request (never shared across requests or callers).
All loaders share the request's session and its lock: one AsyncSession allows one statement at a time,
while GraphQL resolves sibling fields concurrently.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Result, Select, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased
from strawberry.dataloader import DataLoader

from core.models import (
    Assignment,
    Community,
    CommunityLiaison,
    District,
    HelpRequest,
    HelpRequestStatusChange,
    Organization,
    Training,
    Volunteer,
    VolunteerCredential,
    VolunteerTraining,
)
from core.services import access
from core.services.context import Viewer
from core.services.pagination import Ordering, decode_cursor, encode_cursor
from core.services.records import as_records
from core.vocab import AssignmentStatus, Role

SessionGetter = Callable[[], Awaitable[AsyncSession]]

SCOPES: dict[type, Callable[[Viewer], Any]] = {
    HelpRequest: access.request_scope,
    Community: access.community_scope,
    Volunteer: access.volunteer_scope,
    Assignment: access.assignment_scope,
    # Children of a request are visible with the request.
    HelpRequestStatusChange: lambda v: HelpRequestStatusChange.request_id.in_(
        select(HelpRequest.id).where(access.request_scope(v))
    ),
    # Credentials, trainings and liaison seats with their volunteer or community.
    VolunteerCredential: lambda v: VolunteerCredential.volunteer_id.in_(
        select(Volunteer.id).where(access.volunteer_scope(v))
    ),
    VolunteerTraining: lambda v: VolunteerTraining.volunteer_id.in_(
        select(Volunteer.id).where(access.volunteer_scope(v))
    ),
    CommunityLiaison: lambda v: CommunityLiaison.community_id.in_(
        select(Community.id).where(access.community_scope(v))
    ),
}


@dataclass(frozen=True)
class WindowKey:
    """One parent's page of a nested connection: which parent, which slice, which filter."""

    parent_id: int
    first: int
    after: str | None = None
    filter: Hashable = None


@dataclass
class WindowPage:
    items: list[Any]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


class Loaders:
    """The loaders of one request, created on first use."""

    def __init__(self, session: SessionGetter, lock: asyncio.Lock, viewer: Viewer) -> None:
        self._session = session
        self._lock = lock
        self.viewer = viewer
        self._loaders: dict[str, DataLoader[Any, Any]] = {}
        self._by_model: dict[type, DataLoader[int, Any]] = {}

    def scope(self, model: type) -> Any:
        """The viewer's access rule for rows of `model` (every loader applies it: no path around it)."""
        rule = SCOPES.get(model)
        return rule(self.viewer) if rule else true()

    async def _execute(self, stmt: Select[Any]) -> Result[Any]:
        # The result is buffered: it is read after the lock is released.
        async with self._lock:
            session = await self._session()
            return await session.execute(stmt)

    async def run(self, stmt: Select[Any]) -> list[Any]:
        return list((await self._execute(stmt)).all())

    async def rows(self, model: type, *where: Any, order_by: Sequence[Any] = ()) -> list[Any]:
        """Plain rows of a model's table (attribute access like the model, no ORM identity bookkeeping:
        building ORM instances was the largest single cost of a nested page)."""
        table = model.__table__  # type: ignore[attr-defined]
        stmt = select(table).where(self.scope(model), *where).order_by(*order_by)
        return as_records(table.name, await self._execute(stmt))

    def get(self, name: str, factory: Callable[[Loaders], DataLoader[Any, Any]]) -> DataLoader[Any, Any]:
        """The loader called `name`, made by `factory` on first use (plugins add theirs this way)."""
        loader = self._loaders.get(name)
        if loader is None:
            loader = self._loaders[name] = factory(self)
        return loader

    def clear(self) -> None:
        """Forget everything loaded: called after each mutation commits, so payloads read fresh rows."""
        self._loaders.clear()
        self._by_model.clear()

    # -- generic shapes --------------------------------------------------------------------------------

    def by_id(self, model: type) -> DataLoader[int, Any]:
        # Asked for once per nested object of a page (schema.prefetch): a dictionary lookup, not a name built.
        found = self._by_model.get(model)
        if found is not None:
            return found
        name = f"by_id:{model.__name__}"
        if name in self._loaders:
            self._by_model[model] = self._loaders[name]
            return self._loaders[name]

        async def load(ids: list[int]) -> list[Any]:
            found = {row.id: row for row in await self.rows(model, model.id.in_(ids))}  # type: ignore[attr-defined]
            return [found.get(i) for i in ids]

        loader = self._by_model[model] = self.get(name, lambda _: DataLoader(load))
        return loader

    def group(
        self, model: type, fk: InstrumentedAttribute[Any], order_by: Sequence[Any], name: str | None = None
    ) -> DataLoader[int, list[Any]]:
        """All children of each parent id (for short, bounded lists)."""
        name = name or f"group:{model.__name__}.{fk.key}"
        if name in self._loaders:
            return self._loaders[name]

        async def load(ids: list[int]) -> list[list[Any]]:
            grouped: dict[int, list[Any]] = defaultdict(list)
            for row in await self.rows(model, fk.in_(ids), order_by=order_by):
                grouped[getattr(row, fk.key)].append(row)
            return [grouped.get(i, []) for i in ids]

        return self.get(name, lambda _: DataLoader(load))

    def window(
        self,
        name: str,
        base: Callable[[Hashable], Select[Any]],
        fk: InstrumentedAttribute[Any],
        ordering: Ordering[Any],
    ) -> DataLoader[WindowKey, WindowPage]:
        """A page of children per parent in one query (row_number() over each parent's partition)."""

        async def load(keys: list[WindowKey]) -> list[WindowPage]:
            by_shape: dict[tuple[int, str | None, Hashable], list[int]] = defaultdict(list)
            for key in keys:
                by_shape[(key.first, key.after, key.filter)].append(key.parent_id)
            pages: dict[WindowKey, WindowPage] = {}
            for (first, after, filt), parent_ids in by_shape.items():
                stmt = base(filt).where(fk.in_(parent_ids), self.scope(fk.class_))
                if after is not None:
                    stmt = stmt.where(ordering.after(decode_cursor(after, ordering)))
                rn = func.row_number().over(partition_by=fk, order_by=ordering.order_by()).label("rn")
                sub = stmt.add_columns(rn).subquery()
                entity = aliased(fk.class_, sub)
                rows = await self.run(select(entity).where(sub.c.rn <= first + 1).order_by(sub.c[fk.key], sub.c.rn))
                grouped: dict[int, list[Any]] = defaultdict(list)
                for (row,) in rows:
                    grouped[getattr(row, fk.key)].append(row)
                for parent_id in parent_ids:
                    children = grouped.get(parent_id, [])
                    items = children[:first]
                    pages[WindowKey(parent_id, first, after, filt)] = WindowPage(
                        items=items,
                        cursors=[encode_cursor(ordering.name, ordering.key(item)) for item in items],
                        has_next_page=len(children) > first,
                        has_previous_page=after is not None,
                    )
            return [pages[k] for k in keys]

        return self.get(f"window:{name}", lambda _: DataLoader(load))

    def count(
        self, name: str, base: Callable[[Hashable], Select[Any]], fk: InstrumentedAttribute[Any]
    ) -> DataLoader[tuple[int, Hashable], int]:
        """How many children each parent has under a filter (a connection's totalCount)."""

        async def load(keys: list[tuple[int, Hashable]]) -> list[int]:
            by_filter: dict[Hashable, list[int]] = defaultdict(list)
            for parent_id, filt in keys:
                by_filter[filt].append(parent_id)
            counts: dict[tuple[int, Hashable], int] = {}
            for filt, parent_ids in by_filter.items():
                sub = base(filt).where(fk.in_(parent_ids), self.scope(fk.class_)).subquery()
                rows = await self.run(select(sub.c[fk.key], func.count()).group_by(sub.c[fk.key]))
                found = {parent: int(n) for parent, n in rows}
                for parent_id in parent_ids:
                    counts[(parent_id, filt)] = found.get(parent_id, 0)
            return [counts[k] for k in keys]

        return self.get(f"count:{name}", lambda _: DataLoader(load))

    # -- the core's loaders ------------------------------------------------------------------------------

    @property
    def community(self) -> DataLoader[int, Community | None]:
        return self.by_id(Community)

    @property
    def district(self) -> DataLoader[int, District | None]:
        return self.by_id(District)

    @property
    def organization(self) -> DataLoader[int, Organization | None]:
        return self.by_id(Organization)

    @property
    def volunteer(self) -> DataLoader[int, Volunteer | None]:
        return self.by_id(Volunteer)

    @property
    def help_request(self) -> DataLoader[int, HelpRequest | None]:
        return self.by_id(HelpRequest)

    @property
    def assignment(self) -> DataLoader[int, Assignment | None]:
        return self.by_id(Assignment)

    @property
    def training(self) -> DataLoader[int, Training | None]:
        return self.by_id(Training)

    @property
    def assignments_by_request(self) -> DataLoader[int, list[Assignment]]:
        return self.group(Assignment, Assignment.request_id, [Assignment.id])

    @property
    def history_by_request(self) -> DataLoader[int, list[HelpRequestStatusChange]]:
        return self.group(HelpRequestStatusChange, HelpRequestStatusChange.request_id, [HelpRequestStatusChange.id])

    @property
    def liaisons_by_community(self) -> DataLoader[int, list[CommunityLiaison]]:
        return self.group(CommunityLiaison, CommunityLiaison.community_id, [CommunityLiaison.role, CommunityLiaison.id])

    @property
    def credentials_by_volunteer(self) -> DataLoader[int, list[VolunteerCredential]]:
        return self.group(VolunteerCredential, VolunteerCredential.volunteer_id, [VolunteerCredential.id])

    @property
    def trainings_by_volunteer(self) -> DataLoader[int, list[VolunteerTraining]]:
        return self.group(VolunteerTraining, VolunteerTraining.volunteer_id, [VolunteerTraining.completed_at])

    @property
    def holds_accepted(self) -> DataLoader[int, bool]:
        """Whether the viewer (a volunteer) holds an accepted assignment on each request."""
        name = "holds_accepted"
        if name in self._loaders:
            return self._loaders[name]

        async def load(ids: list[int]) -> list[bool]:
            if access.role_of(self.viewer) != Role.VOLUNTEER:
                return [False] * len(ids)
            rows = await self.run(
                select(Assignment.request_id).where(
                    Assignment.request_id.in_(ids),
                    Assignment.volunteer_id == self.viewer.volunteer_id,
                    Assignment.status == AssignmentStatus.ACCEPTED.value,
                )
            )
            held = {r[0] for r in rows}
            return [i in held for i in ids]

        return self.get(name, lambda _: DataLoader(load))

    @property
    def hours_by_volunteer(self) -> DataLoader[int, Decimal]:
        async def load(ids: list[int]) -> list[Decimal]:
            rows = await self.run(
                select(Assignment.volunteer_id, func.sum(Assignment.hours))
                .where(Assignment.volunteer_id.in_(ids), Assignment.status == AssignmentStatus.COMPLETED.value)
                .group_by(Assignment.volunteer_id)
            )
            found = {vid: Decimal(total) for vid, total in rows}
            return [found.get(i, Decimal(0)) for i in ids]

        return self.get("hours_by_volunteer", lambda _: DataLoader(load))
