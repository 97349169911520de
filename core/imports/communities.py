"""Import kind `communities`: a sheet of communities (社区/小区/居委) of one organisation.

Each row is checked by the rules `create_community` applies (core.services.communities.checked_fields); its
district is named (雁塔区, or 雁塔 without the suffix) rather than given by id. A row naming a community the
organisation already has in that district updates the fields the row gives (a cell left empty keeps what the
record holds) or counts as `unchanged`; the same (district, name) twice in the file: the first row wins, later
ones are `duplicates`. All lookups are one query each for the whole file. New communities are inserted with
ON CONFLICT DO NOTHING: one created meanwhile by another transaction (a concurrent import, the mutation) is
reported as a duplicate (ALREADY_EXISTS), never a failed import.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core.errors import UserErrorData, Validator
from core.i18n import Text, _
from core.imports.lookup import Districts, fold
from core.imports.spec import WRITE, Column, ImportReport, Row, RowIssue, report_progress
from core.models import Community
from core.services import communities
from core.services.context import ServiceContext

# -- row issues ---------------------------------------------------------------------------------------------


class Issues:
    """Turns problems of a row into the report's RowIssues, naming the column as the file spells it."""

    def __init__(self, report: ImportReport, by_path: Mapping[str, str]) -> None:
        self.report = report
        # field -> the header mapped to it
        self.headers = {field: header for header, field in report.mapping.items()}
        # the last element of a mutation's field path (e.g. "headPhone") -> the import field
        self.by_path = by_path

    def make(self, row: Row, field: str | None, code: str, template: str, **params: Any) -> RowIssue:
        error = UserErrorData.of(code, template, None, **params)
        return self._issue(row, field, error)

    def _issue(self, row: Row, field: str | None, error: UserErrorData) -> RowIssue:
        return RowIssue(
            row=row.number,
            column=self.headers.get(field) if field else None,
            field=field,
            code=error.code,
            message=error.localized(),
        )

    def from_errors(self, row: Row, errors: Iterable[UserErrorData]) -> list[RowIssue]:
        """A service's field errors (paths like ("input", "headPhone")) as issues of the row's columns."""
        out = []
        for error in errors:
            last = error.field[-1] if error.field else None
            out.append(self._issue(row, self.by_path.get(last or "", None), error))
        return out

    def reject(self, issues: Sequence[RowIssue]) -> None:
        self.report.rejected.extend(issues)

    def duplicate(self, row: Row, field: str | None, template: str, **params: Any) -> None:
        self.report.duplicates.append(self.make(row, field, "DUPLICATE_ROW", template, **params))


# -- cells --------------------------------------------------------------------------------------------------


def number(v: Validator, path: tuple[str, ...], text: str, label: Text, *, integer: bool = False) -> float | int | None:
    """A cell as a number (None when empty), or INVALID_INPUT naming the column."""
    if not text:
        return None
    cleaned = unicodedata.normalize("NFKC", text).strip().replace(",", "")
    try:
        value = float(cleaned)
    except ValueError:
        value = None
    if value is None or value != value or value in (float("inf"), float("-inf")):
        v.add(path, "INVALID_INPUT", "{label}: “{value}” is not a number.", label=label, value=text[:40])
        return None
    if integer:
        if not value.is_integer():
            v.add(path, "INVALID_INPUT", "{label}: “{value}” is not a whole number.", label=label, value=text[:40])
            return None
        return int(value)
    return value


def not_numbers(v: Validator, *fields: str) -> bool:
    """Whether `v` already holds an error on one of these fields (a cell that is not a number)."""
    return any(e.field and e.field[-1] in fields for e in v.errors)


# -- the kind -----------------------------------------------------------------------------------------------

# The mutation's input field (last element of its error path) -> the import field.
_PATHS = {
    "name": "name",
    "districtId": "district",
    "street": "street",
    "headName": "head_name",
    "headPhone": "head_phone",
    "latitude": "latitude",
    "longitude": "longitude",
}
_UPDATABLE = ("street", "head_name", "head_phone", "latitude", "longitude")
# How often (rows) the import's progress hears of the write.
PROGRESS_EVERY = 500


class CommunitiesKind:
    name = "communities"
    permission = "communities.manage"
    columns = (
        Column(
            "name",
            (
                "社区名称",
                "社区",
                "小区",
                "小区名称",
                "居委",
                "居委会",
                "社区(村)",
                "name",
                "community",
                "community name",
            ),
            True,
            _("Name"),
        ),
        Column("district", ("所在区县", "所在区", "区县", "区", "行政区", "district", "county"), True, _("District")),
        Column("street", ("地址", "详细地址", "街道", "街道地址", "street", "address"), False, _("Address")),
        Column("latitude", ("纬度", "latitude", "lat"), False, _("Latitude")),
        Column("longitude", ("经度", "longitude", "lng", "lon"), False, _("Longitude")),
        Column(
            "head_name",
            ("负责人", "社区负责人", "负责人姓名", "联系人", "head", "head name", "contact"),
            False,
            _("Head's name"),
        ),
        Column(
            "head_phone",
            ("负责人电话", "负责人手机", "联系电话", "联系人电话", "电话", "head phone", "contact phone", "phone"),
            False,
            _("Head's phone"),
        ),
    )

    async def write(
        self,
        ctx: ServiceContext,
        rows: Sequence[Row],
        *,
        organization_id: int,
        dry_run: bool,
        report: ImportReport,
    ) -> None:
        issues = Issues(report, _PATHS)
        districts = await Districts.load(ctx)
        existing = {
            (c.district_id, fold(c.name)): c
            for c in (
                await ctx.session.scalars(select(Community).where(Community.organization_id == organization_id))
            ).all()
        }
        seen: dict[tuple[int, str], int] = {}
        new: list[tuple[Row, dict[str, object]]] = []
        for done, row in enumerate(rows, 1):
            if done % PROGRESS_EVERY == 0:
                report_progress(WRITE, done, len(rows))
                await asyncio.sleep(0)  # checking 50,000 rows takes a while: let the loop serve others meanwhile
            values = self._checked(row, organization_id, districts, issues)
            if values is None:
                continue
            key = (int(values["district_id"]), fold(str(values["name"])))
            if key in seen:
                issues.duplicate(row, "name", _("The same community as row {earlier}."), earlier=seen[key])
                continue
            seen[key] = row.number
            current = existing.get(key)
            if current is None:
                new.append((row, values))
                continue
            # The row's values passed the rules as a whole; the record keeps what the row leaves empty.
            changes = self._changes(current, values, row)
            if not changes:
                report.unchanged += 1
                continue
            report.updated += 1
            if not dry_run:
                for field, value in changes.items():
                    setattr(current, field, value)
        if dry_run:
            report.created += len(new)
        elif new:
            await self._insert(ctx, new, issues, report)

    @staticmethod
    async def _insert(
        ctx: ServiceContext, new: Sequence[tuple[Row, dict[str, object]]], issues: Issues, report: ImportReport
    ) -> None:
        """Insert the new communities; one another transaction created meanwhile (another import, the
        mutation) is skipped and reported as a duplicate instead of failing the whole import on the unique
        key. Batched by SQLAlchemy (insertmanyvalues) under PostgreSQL's parameter limit."""
        await ctx.session.flush()  # the updates above, before the inserts
        statement = (
            pg_insert(Community)
            .on_conflict_do_nothing(index_elements=["organization_id", "district_id", "name"])
            .returning(Community.district_id, Community.name)
        )
        result = await ctx.session.execute(statement, [values for _, values in new])
        inserted = {(district_id, name) for district_id, name in result.all()}
        report.created += len(inserted)
        for row, values in new:
            if (values["district_id"], values["name"]) not in inserted:
                report.duplicates.append(
                    issues.make(row, "name", "ALREADY_EXISTS", _("This community was created meanwhile."))
                )

    def _checked(
        self, row: Row, organization_id: int, districts: Districts, issues: Issues
    ) -> dict[str, object] | None:
        """The row's values as create_community would store them, or None (its problems reported)."""
        cells = row.values
        v = Validator()
        district_id = None
        district = cells.get("district", "")
        if not district:
            v.add(("input", "districtId"), "REQUIRED", "{label} must not be empty.", label=_("District"))
        else:
            district_id = districts.find(district)
            if district_id is None:
                v.add(("input", "districtId"), "NOT_FOUND", "No district is called “{value}”.", value=district[:40])
        latitude = number(v, ("input", "latitude"), cells.get("latitude", ""), _("Latitude"))
        longitude = number(v, ("input", "longitude"), cells.get("longitude", ""), _("Longitude"))
        if not_numbers(v, "latitude", "longitude"):
            latitude = longitude = None  # said once, not again as "latitude and longitude go together"
        data = communities.CommunityInput(
            name=cells.get("name", ""),
            district_id=district_id or 0,
            street=cells.get("street", ""),
            organization_id=organization_id,
            latitude=latitude,
            longitude=longitude,
            head_name=cells.get("head_name", ""),
            head_phone=cells.get("head_phone") or None,
        )
        values = communities.checked_fields(v, data)
        if v.errors:
            issues.reject(issues.from_errors(row, v.errors))
            return None
        return values

    @staticmethod
    def _changes(current: Community, values: Mapping[str, object], row: Row) -> dict[str, object]:
        """The fields the row gives a value for that differ from the record ({}: nothing differs)."""
        given = {f for f in _UPDATABLE if row.values.get(f, "")}
        if "latitude" in given or "longitude" in given:
            given |= {"latitude", "longitude"}
        return {f: values[f] for f in sorted(given) if values[f] != getattr(current, f)}


COMMUNITIES = CommunitiesKind()
