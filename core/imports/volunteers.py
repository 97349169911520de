"""Importing volunteers: each row validated as registration validates it, the good ones written in bulk.

Rows are matched on the phone number (normalised as registration stores it) within the organisation: a new
number creates a volunteer, a known one updates the fields the file gives (an empty optional cell keeps the
stored value), and a row that changes nothing leaves the record untouched (no updated_at bump), so that
importing the same file twice changes nothing the second time.

Parity with `register_volunteer`: the same field rules (`volunteers.clean_volunteer`), the district and the
organisation must exist, the permission is volunteers.manage for the organisation, and each volunteer created
publishes `VolunteerRegistered`. Registration writes no audit entry of its own (the GraphQL runner audits the
mutation), so neither does this; the upload mutation's runner audits the import as one write.

Speed: districts are read once, existing volunteers in one query, new ones inserted by one
INSERT ... SELECT FROM unnest(...) and changed ones updated by one UPDATE ... FROM unnest(...), as the app
role under row-level security like every service write.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text

from core import events
from core.errors import UserErrorData, Validator
from core.i18n import Text, _, translate
from core.imports.lookup import Districts, fold
from core.imports.spec import CHECK, WRITE, Column, ImportReport, Row, RowIssue, report_progress
from core.models import Organization
from core.services.common import get
from core.services.context import ServiceContext
from core.services.validation import normalize_phone
from core.services.volunteers import VolunteerInput, clean_volunteer
from core.vocab import LABELS, Availability, Team, VolunteerMode

COLUMNS: tuple[Column, ...] = (
    Column("name", ("姓名", "名字", "志愿者姓名", "真实姓名", "name", "full name", "volunteer"), True, _("Name")),
    Column(
        "phone",
        (
            "手机号",
            "手机号码",
            "联系电话",
            "电话",
            "手机",
            "电话号码",
            "联系方式",
            "phone",
            "mobile",
            "phone number",
            "telephone",
            "tel",
        ),
        True,
        _("Phone"),
    ),
    Column(
        "district", ("所在区县", "所在区", "区县", "所在区域", "区域", "区", "district", "county"), False, _("District")
    ),
    Column("mode", ("志愿类型", "志愿者类型", "参与方式", "服务方式", "志愿方式", "mode", "type"), True, _("Mode")),
    Column("skills", ("技能", "特长", "专业技能", "技能特长", "skills", "skill"), False, _("Skills")),
    Column("teams", ("团队", "所属团队", "志愿团队", "小组", "teams", "team"), False, _("Teams")),
    Column("availability", ("状态", "可用状态", "当前状态", "availability", "status"), False, _("Availability")),
    Column(
        "max_concurrent_assignments",
        (
            "最多同时任务",
            "最大同时任务数",
            "同时任务上限",
            "max concurrent assignments",
            "max concurrent",
            "max_concurrent",
        ),
        False,
        _("Max concurrent assignments"),
    ),
    Column("latitude", ("纬度", "latitude", "lat"), False, _("Latitude")),
    Column("longitude", ("经度", "longitude", "lng", "lon"), False, _("Longitude")),
)

# The mutation's field path (input.<camelCase>) -> the import field, to put a rule's problem in its column.
_PATH_FIELD = {
    "name": "name",
    "phone": "phone",
    "mode": "mode",
    "districtId": "district",
    "teams": "teams",
    "skills": "skills",
    "availability": "availability",
    "maxConcurrentAssignments": "max_concurrent_assignments",
    "latitude": "latitude",
    "longitude": "longitude",
}
# Splits a list cell (skills, teams): the separators people type, Chinese and Western.
_LIST_SEPARATORS = re.compile(r"[,，、;；/|\n]+")
# Teams as a coordinator writes them (the vocabulary's values are accepted too).
_TEAM_WORDS: dict[Team, tuple[str, ...]] = {
    Team.RECRUITMENT: ("招募",),
    Team.TRAINING: ("培训",),
    Team.EXTERNAL_LIAISON: ("对外联络", "外联"),
    Team.COMMUNITY_LIAISON: ("社区联络",),
    Team.SUPPLIES_MANAGEMENT: ("物资管理", "物资"),
    Team.DELIVERY: ("配送", "运送"),
    Team.OPINION_MONITORING: ("舆情监测", "舆情"),
    Team.PSYCHOLOGICAL_SUPPORT: ("心理支持", "心理疏导", "心理"),
    Team.PUBLICITY: ("宣传",),
}
_MODE_WORDS: dict[VolunteerMode, tuple[str, ...]] = {
    VolunteerMode.ONLINE: ("网上", "远程", "线上志愿者"),
    VolunteerMode.OFFLINE: ("现场", "实地", "线下志愿者"),
    VolunteerMode.RESERVE: ("储备", "备用", "后备志愿者", "reserve"),
}
_AVAILABILITY_WORDS: dict[Availability, tuple[str, ...]] = {
    Availability.AVAILABLE: ("可用", "空闲", "有空"),
    Availability.BUSY: ("忙碌", "繁忙"),
    Availability.OFF: ("休息", "暂停", "不可用", "停用"),
}
_TEAM_SUFFIXES = ("团队", "小组", "组", "队", "team")
# How often (rows) the progress callback hears of the checks.
PROGRESS_EVERY = 500


def _vocabulary(words: dict[Any, tuple[str, ...]]) -> dict[str, Any]:
    """Each member by its stored value, its label in English and Chinese, and the extra words given."""
    out: dict[str, Any] = {}
    for member, extra in words.items():
        label = LABELS.get(member.value)
        names = [member.value, member.value.replace("_", " "), *extra]
        if label:
            names += [str(label), translate(label, locale="zh_CN")]
        for name in names:
            out.setdefault(fold(name), member)
    return out


MODES: dict[str, VolunteerMode] = _vocabulary(_MODE_WORDS)
AVAILABILITIES: dict[str, Availability] = _vocabulary(_AVAILABILITY_WORDS)
TEAMS: dict[str, Team] = _vocabulary(_TEAM_WORDS)


def _team(word: str) -> Team | None:
    key = fold(word)
    if key in TEAMS:
        return TEAMS[key]
    for suffix in _TEAM_SUFFIXES:
        if key.endswith(suffix) and key[: -len(suffix)] in TEAMS:
            return TEAMS[key[: -len(suffix)]]
    return None


def _items(cell: str) -> list[str]:
    return [part.strip() for part in _LIST_SEPARATORS.split(cell) if part.strip()]


_STORED = (
    "name",
    "phone",
    "mode",
    "district_id",
    "latitude",
    "longitude",
    "teams",
    "skills",
    "availability",
    "max_concurrent_assignments",
)


@dataclass
class _Existing:
    id: int
    active_assignments: int
    values: dict[str, Any]


class _RowCheck:
    """One row's problems, each named by its column."""

    def __init__(self, row: Row, header_of: dict[str, str]) -> None:
        self.row = row
        self.header_of = header_of
        self.v = Validator()
        self.issues: list[RowIssue] = []

    def add(self, field: str, code: str, message: str, **params: Any) -> None:
        self._issue(field, UserErrorData.of(code, message, ("input", field), **params))

    def _issue(self, field: str | None, error: UserErrorData) -> None:
        self.issues.append(
            RowIssue(
                row=self.row.number,
                column=self.header_of.get(field) if field else None,
                field=field,
                code=error.code,
                message=error.localized(),
            )
        )

    def collect(self) -> None:
        for error in self.v.errors:
            field = _PATH_FIELD.get(error.field[-1]) if error.field else None
            self._issue(field, error)
        self.v.errors.clear()


def _number(check: _RowCheck, field: str, cell: str, label: Text, *, integer: bool) -> float | int | None:
    value = unicodedata.normalize("NFKC", cell).strip()
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        number = None
    if number is None or (isinstance(number, float) and not math.isfinite(number)):
        template = (
            _("{label}: “{value}” is not a whole number.") if integer else _("{label}: “{value}” is not a number.")
        )
        check.add(field, "INVALID_INPUT", template, label=label, value=cell[:40])
        return None
    return number


def _parse(check: _RowCheck, values: dict[str, str], districts: Districts, base: VolunteerInput) -> VolunteerInput:
    """The row's cells as a registration input on top of `base` (the stored record, or the defaults): an
    empty optional cell keeps the base's value. Cells that cannot be read are reported (and the base kept,
    so that the field rules still run on the rest of the row)."""
    changes: dict[str, Any] = {"name": values.get("name", base.name), "phone": values.get("phone", base.phone)}
    if "mode" in values:
        cell = values["mode"]
        mode = MODES.get(fold(cell))
        if not cell:
            check.add("mode", "REQUIRED", "{label} must not be empty.", label=_("Mode"))
        elif mode is None:
            check.add("mode", "INVALID_INPUT", "“{value}” is not a volunteer mode (线上/线下/后备).", value=cell[:40])
        else:
            changes["mode"] = mode
    if values.get("district"):
        district = districts.find(values["district"])
        if district is None:
            check.add("district", "NOT_FOUND", "There is no district “{value}”.", value=values["district"][:40])
        else:
            changes["district_id"] = district
    if values.get("skills"):
        changes["skills"] = _items(values["skills"])
    if values.get("teams"):
        teams: list[Team] = []
        for word in _items(values["teams"]):
            team = _team(word)
            if team is None:
                check.add("teams", "INVALID_INPUT", "“{value}” is not a team.", value=word[:40])
            elif team not in teams:
                teams.append(team)
        changes["teams"] = teams
    if values.get("availability"):
        availability = AVAILABILITIES.get(fold(values["availability"]))
        if availability is None:
            check.add(
                "availability", "INVALID_INPUT", "“{value}” is not an availability.", value=values["availability"][:40]
            )
        else:
            changes["availability"] = availability
    if values.get("max_concurrent_assignments"):
        number = _number(
            check,
            "max_concurrent_assignments",
            values["max_concurrent_assignments"],
            _("Max concurrent assignments"),
            integer=True,
        )
        if number is not None:
            changes["max_concurrent_assignments"] = number
    for field, label in (("latitude", _("Latitude")), ("longitude", _("Longitude"))):
        if values.get(field):
            number = _number(check, field, values[field], label, integer=False)
            if number is not None:
                changes[field] = float(number)
    return replace(base, **changes)


def _stored(existing: dict[str, Any]) -> VolunteerInput:
    return VolunteerInput(
        name=existing["name"],
        phone=existing["phone"],
        mode=VolunteerMode(existing["mode"]),
        district_id=existing["district_id"],
        organization_id=existing["organization_id"],
        latitude=existing["latitude"],
        longitude=existing["longitude"],
        teams=[Team(t) for t in existing["teams"]],
        skills=list(existing["skills"]),
        availability=Availability(existing["availability"]),
        max_concurrent_assignments=existing["max_concurrent_assignments"],
    )


_SELECT_EXISTING = text(
    "SELECT id, organization_id, active_assignments, " + ", ".join(_STORED) + " FROM volunteers "
    "WHERE organization_id = :org AND phone = ANY(CAST(:phones AS varchar[])) ORDER BY id FOR UPDATE"
)
_SEP = "\x1f"  # joins a list cell for unnest: array-of-arrays parameters do not unnest row by row
_INSERT = text(
    "INSERT INTO volunteers (organization_id, name, phone, mode, district_id, latitude, longitude, teams, skills, "
    "availability, max_concurrent_assignments) "
    "SELECT :org, u.name, u.phone, u.mode, u.district_id, u.latitude, u.longitude, "
    "string_to_array(u.teams, E'\\x1f')::varchar[], string_to_array(u.skills, E'\\x1f')::varchar[], "
    "u.availability, u.max_concurrent "
    "FROM unnest(CAST(:name AS varchar[]), CAST(:phone AS varchar[]), CAST(:mode AS varchar[]), "
    "CAST(:district_id AS bigint[]), CAST(:latitude AS float8[]), CAST(:longitude AS float8[]), "
    "CAST(:teams AS text[]), CAST(:skills AS text[]), CAST(:availability AS varchar[]), "
    "CAST(:max_concurrent AS int[])) "
    "AS u(name, phone, mode, district_id, latitude, longitude, teams, skills, availability, max_concurrent) "
    # A volunteer registered meanwhile with the same number: skipped and reported, not a failed import.
    "ON CONFLICT (organization_id, phone) DO NOTHING "
    "RETURNING id, phone, mode"
)
_UPDATE = text(
    "UPDATE volunteers AS v SET name = u.name, mode = u.mode, district_id = u.district_id, "
    "latitude = u.latitude, longitude = u.longitude, "
    "teams = string_to_array(u.teams, E'\\x1f')::varchar[], skills = string_to_array(u.skills, E'\\x1f')::varchar[], "
    "availability = u.availability, max_concurrent_assignments = u.max_concurrent, updated_at = now() "
    "FROM unnest(CAST(:id AS bigint[]), CAST(:name AS varchar[]), CAST(:mode AS varchar[]), "
    "CAST(:district_id AS bigint[]), CAST(:latitude AS float8[]), CAST(:longitude AS float8[]), "
    "CAST(:teams AS text[]), CAST(:skills AS text[]), CAST(:availability AS varchar[]), "
    "CAST(:max_concurrent AS int[])) "
    "AS u(id, name, mode, district_id, latitude, longitude, teams, skills, availability, max_concurrent) "
    "WHERE v.id = u.id AND v.organization_id = :org"
)


def _columns(records: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        "name": [r["name"] for r in records],
        "phone": [r["phone"] for r in records],
        "mode": [r["mode"] for r in records],
        "district_id": [r["district_id"] for r in records],
        "latitude": [r["latitude"] for r in records],
        "longitude": [r["longitude"] for r in records],
        "teams": [_SEP.join(r["teams"]) for r in records],
        "skills": [_SEP.join(s.replace(_SEP, " ") for s in r["skills"]) for r in records],
        "availability": [r["availability"] for r in records],
        "max_concurrent": [r["max_concurrent_assignments"] for r in records],
    }


@dataclass
class _Checked:
    """What the rows come to once checked (`_check`): the writes to make and what the report says."""

    creates: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    updates: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    rejected: list[RowIssue] = dataclasses.field(default_factory=list)
    duplicates: list[RowIssue] = dataclasses.field(default_factory=list)
    unchanged: int = 0


def _check(
    rows: Sequence[Row],
    normalized: Sequence[str],
    existing: dict[str, _Existing],
    districts: Districts,
    header_of: dict[str, str],
    defaults: VolunteerInput,
) -> _Checked:
    """Every row checked as registration checks it, against what the database said: no database, no event
    loop (run in a worker thread; 50,000 rows are a second of CPU). Messages in the caller's language (the
    locale is a context variable, which asyncio.to_thread carries over)."""
    out = _Checked()
    seen: dict[str, int] = {}
    for done, (row, phone) in enumerate(zip(rows, normalized, strict=True), start=1):
        if done % PROGRESS_EVERY == 0:
            report_progress(CHECK, done, len(rows))
        check = _RowCheck(row, header_of)
        current = existing.get(phone) if phone else None
        base = defaults if current is None else _stored(current.values)
        data = _parse(check, row.values, districts, base)
        values = clean_volunteer(check.v, data, None if current is None else current.active_assignments)
        check.collect()
        if check.issues:
            out.rejected.extend(check.issues)
            continue
        if values["phone"] in seen:
            out.duplicates.append(
                RowIssue(
                    row=row.number,
                    column=header_of.get("phone"),
                    field="phone",
                    code="DUPLICATE_ROW",
                    message=translate(
                        _("Row {first} has the same phone number; the first row was taken."),
                        {"first": seen[values["phone"]]},
                    ),
                )
            )
            continue
        seen[values["phone"]] = row.number
        if current is None:
            out.creates.append({**values, "row": row.number})
        elif any(values[k] != current.values[k] for k in _STORED):
            out.updates.append({**values, "id": current.id})
        else:
            out.unchanged += 1
    report_progress(CHECK, len(rows), len(rows))
    return out


class VolunteersImport:
    name = "volunteers"
    columns = COLUMNS
    permission = "volunteers.manage"

    async def write(
        self,
        ctx: ServiceContext,
        rows: Sequence[Row],
        *,
        organization_id: int,
        dry_run: bool,
        report: ImportReport,
    ) -> None:
        header_of = {f: h for h, f in report.mapping.items()}
        # As registration: the organisation must exist (and be visible to the caller).
        await get(ctx, Organization, organization_id, what=_("Organisation"), field=("organizationId",))
        districts = await Districts.load(ctx)
        # One query for every volunteer of the organisation the file names (locked: updated below).
        normalized = await asyncio.to_thread(lambda: [normalize_phone(r.values.get("phone", "")) for r in rows])
        phones = {p for p in normalized if p}
        existing: dict[str, _Existing] = {}
        if phones:
            result = await ctx.session.execute(_SELECT_EXISTING, {"org": organization_id, "phones": list(phones)})
            for record in result.mappings():
                values = dict(record)
                existing[values["phone"]] = _Existing(values["id"], values["active_assignments"], values)
        defaults = VolunteerInput(name="", phone="", mode=VolunteerMode.OFFLINE, organization_id=organization_id)
        # The row checks (parsing cells, the field rules, translating messages) off the event loop: the
        # service keeps answering everyone else meanwhile. The transaction stays open, idle, meanwhile.
        checked = await asyncio.to_thread(_check, rows, normalized, existing, districts, header_of, defaults)
        report.rejected.extend(checked.rejected)
        report.duplicates.extend(checked.duplicates)
        report.unchanged += checked.unchanged
        creates, updates = checked.creates, checked.updates
        report.updated = len(updates)
        if dry_run:
            report.created = len(creates)
            return
        total = len(updates) + len(creates)
        report_progress(WRITE, 0, total)
        if updates:
            await ctx.session.execute(
                _UPDATE, {"org": organization_id, "id": [u["id"] for u in updates], **_columns(updates)}
            )
            report_progress(WRITE, len(updates), total)
        if creates:
            result = await ctx.session.execute(_INSERT, {"org": organization_id, **_columns(creates)})
            created = {phone: (id_, mode) for id_, phone, mode in result.all()}
            report.created = len(created)
            for record in creates:
                if record["phone"] not in created:
                    report.duplicates.append(
                        RowIssue(
                            row=record["row"],
                            column=header_of.get("phone"),
                            field="phone",
                            code="ALREADY_EXISTS",
                            message=translate("A volunteer with this phone number exists already."),
                        )
                    )
            report_progress(WRITE, total, total)
            # Published together once every row is written (a plugin's failure still undoes the import: the
            # same transaction). One await each: plugins hear of each volunteer as of one registration.
            events_ = [
                events.VolunteerRegistered(organization_id=organization_id, volunteer_id=id_, mode=mode)
                for id_, mode in created.values()
            ]
            for event in events_:
                await ctx.publish(event)


VOLUNTEERS = VolunteersImport()

__all__ = ["COLUMNS", "VOLUNTEERS", "VolunteersImport"]
