"""Per-request DataLoaders: every nested field is one batched query per level, never one per parent.

A loader set lives exactly as long as one GraphQL request (never shared across requests or callers).
All loaders share the request's session and its lock: one AsyncSession allows one statement at a time,
while GraphQL resolves sibling fields concurrently.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Result, Select, any_, bindparam, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY
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
from core.services.pagination import Ordering, decode_cursor
from core.services.records import as_records
from core.vocab import AssignmentStatus, Role

SessionGetter = Callable[[], Awaitable[AsyncSession]]
K = TypeVar("K")
V = TypeVar("V")

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


_FILLS: set[asyncio.Task[None]] = set()


def among(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column = ANY($1)`: the batch's keys as one array parameter. `IN (…)` expands into one parameter per
    key: new SQL text for every batch size (so PostgreSQL prepares each size afresh) and a regular-expression
    substitution per key while SQLAlchemy renders it."""
    return column == any_(bindparam(None, list(values), type_=_array_of(column.type)))


@functools.cache
def _array_of(item_type: Any) -> ARRAY:
    # One array type per column type (made per statement, each was a small reference cycle to collect).
    return ARRAY(item_type)


class Loader(DataLoader[K, V]):
    """A DataLoader that a page's prefetch fills in bulk (schema.prefetch).

    `fill(keys)` loads the keys not yet known and keeps the answers in `values`, a plain dictionary, where
    `schema.prefetch.now_or_later` reads them: no future, no callback and no event-loop turn per key (on a
    page of 100 requests with their offers those were ~350 each). Like DataLoader's `load`, the keys that
    callers ask for in the same turn of the event loop (the nested connections of a page's parents) go to
    the batch function together, once. `load` and `load_many` answer from `values` too, so a key is never
    read twice in a request."""

    def __init__(self, load_fn: Callable[[list[K]], Awaitable[Sequence[V | BaseException]]]) -> None:
        super().__init__(load_fn)
        self.values: dict[K, V] = {}
        # Values of `values` as GraphQL objects, per conversion (schema.prefetch.reference): made once.
        self.converted: dict[Callable[[Any], Any], dict[K, Any]] = {}
        self._filling: tuple[list[K], asyncio.Future[None]] | None = None

    async def fill(self, keys: Iterable[K]) -> list[V]:
        """The values of `keys` (in order, each once), loaded where not yet known. A failed batch raises to
        every caller and keeps nothing: a field that needs the value loads it again and reports the error."""
        wanted = list(dict.fromkeys(keys))
        values = self.values
        missing = [key for key in wanted if key not in values]
        if missing:
            if self._filling is None:
                self._filling = ([], self.loop.create_future())
                self.loop.call_soon(self._dispatch_fill)
            pending, done = self._filling
            pending.extend(missing)
            # Shielded: one caller cancelled (a sibling field failed) must not cancel the others' batch.
            await asyncio.shield(done)
        return [values[key] for key in wanted if key in values]

    def _dispatch_fill(self) -> None:
        assert self._filling is not None
        keys, done = self._filling
        self._filling = None
        task = self.loop.create_task(self._run_fill(keys, done))
        # Kept until it ends (the loop holds tasks weakly).
        _FILLS.add(task)
        task.add_done_callback(_FILLS.discard)

    async def _run_fill(self, keys: list[K], done: asyncio.Future[None]) -> None:
        values = self.values
        missing = [key for key in dict.fromkeys(keys) if key not in values]
        try:
            loaded = await self.load_fn(missing) if missing else []
            # A batch function answering another number of values than keys fails its callers (never hangs them).
            answers = list(zip(missing, loaded, strict=True))
        except Exception as error:
            done.set_exception(error)
            done.exception()  # delivered to each caller by its shield; not a never-retrieved error
            return
        for key, value in answers:
            if not isinstance(value, BaseException):
                values[key] = value
        done.set_result(None)

    def load(self, key: K) -> Awaitable[V]:
        values = self.values
        if key in values:
            future = self.loop.create_future()
            future.set_result(values[key])
            return future
        return super().load(key)

    def clear(self, key: K) -> None:
        self.clear_many([key])

    def clear_many(self, keys: Iterable[K]) -> None:
        keys = list(keys)
        for key in keys:
            self.values.pop(key, None)
            for converted in self.converted.values():
                converted.pop(key, None)
        super().clear_many(keys)

    def clear_all(self) -> None:
        self.values.clear()
        self.converted.clear()
        super().clear_all()

    def prime_many(self, data: Mapping[K, V], force: bool = False) -> None:
        for key, value in data.items():
            if force or key not in self.values:
                self.values[key] = value
                for converted in self.converted.values():
                    converted.pop(key, None)
        super().prime_many(data, force)


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
    # An item's cursor, made when asked for (see core.services.pagination.Page).
    cursor: Callable[[Any], str]
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

    async def _execute(self, stmt: Select[Any], *, orm: bool = True) -> Result[Any]:
        """`stmt` on the request's session, one statement at a time (`orm=False`: on its connection, for a
        plain Core select). The result is buffered: it is read after the lock is released."""
        async with self._lock:
            session = await self._session()
            if orm:
                return await session.execute(stmt)
            return await (await session.connection()).execute(stmt)

    async def run(self, stmt: Select[Any]) -> list[Any]:
        return list((await self._execute(stmt)).all())

    async def rows(self, model: type, *where: Any, order_by: Sequence[Any] = ()) -> list[Any]:
        """Plain rows of a model's table (attribute access like the model, no ORM identity bookkeeping:
        building ORM instances was the largest single cost of a nested page). Executed on the session's
        connection: a table's columns need none of the ORM's result machinery, which cost more than the
        rows themselves. The session's viewer settings apply there as everywhere (core.tenancy)."""
        table = model.__table__  # type: ignore[attr-defined]
        stmt = select(table).where(self.scope(model), *where).order_by(*order_by)
        return as_records(table.name, await self._execute(stmt, orm=False))

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
            found = {row.id: row for row in await self.rows(model, among(model.id, ids))}  # type: ignore[attr-defined]
            return [found.get(i) for i in ids]

        loader = self._by_model[model] = self.get(name, lambda _: Loader(load))
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
            for row in await self.rows(model, among(fk, ids), order_by=order_by):
                grouped[getattr(row, fk.key)].append(row)
            return [grouped.get(i, []) for i in ids]

        return self.get(name, lambda _: Loader(load))

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
                stmt = base(filt).where(among(fk, parent_ids), self.scope(fk.class_))
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
                        cursor=ordering.cursor,
                        has_next_page=len(children) > first,
                        has_previous_page=after is not None,
                    )
            return [pages[k] for k in keys]

        return self.get(f"window:{name}", lambda _: Loader(load))

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
                sub = base(filt).where(among(fk, parent_ids), self.scope(fk.class_)).subquery()
                rows = await self.run(select(sub.c[fk.key], func.count()).group_by(sub.c[fk.key]))
                found = {parent: int(n) for parent, n in rows}
                for parent_id in parent_ids:
                    counts[(parent_id, filt)] = found.get(parent_id, 0)
            return [counts[k] for k in keys]

        return self.get(f"count:{name}", lambda _: Loader(load))

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
                    among(Assignment.request_id, ids),
                    Assignment.volunteer_id == self.viewer.volunteer_id,
                    Assignment.status == AssignmentStatus.ACCEPTED.value,
                )
            )
            held = {r[0] for r in rows}
            return [i in held for i in ids]

        return self.get(name, lambda _: Loader(load))

    @property
    def hours_by_volunteer(self) -> DataLoader[int, Decimal]:
        async def load(ids: list[int]) -> list[Decimal]:
            rows = await self.run(
                select(Assignment.volunteer_id, func.sum(Assignment.hours))
                .where(among(Assignment.volunteer_id, ids), Assignment.status == AssignmentStatus.COMPLETED.value)
                .group_by(Assignment.volunteer_id)
            )
            found = {vid: Decimal(total) for vid, total in rows}
            return [found.get(i, Decimal(0)) for i in ids]

        return self.get("hours_by_volunteer", lambda _: Loader(load))
