"""Import kind `requests`: help requests collected through a form (求助登记表), submitted as `submit` does.

A row names its community (within the organisation, and the viewer's reach, as the mutation allows; with the
district when two communities share a name), category and urgency by their Chinese or English words, the
requester, and the needed-by time in the caller's zone. Each row is checked by the mutation's own rules
(core.services.help_requests.checked_fields), then submitted through `help_requests.submit` in a savepoint of
its own -- status history, domain events, the live triggers and the audit trail as for one request; a row the
service still refuses leaves nothing behind.

Requests are never updated by an import. Each request created remembers the row it came from
(help_requests.import_key, see `import_key`: a hash of what the row says as read -- community, category,
urgency, phone, needed-by instant, name, title, description; with the form's submission id, that id, phone
and community alone), unique per organisation. A row is a duplicate only when it is the same row: twice in
the file (DUPLICATE_ROW, the first is taken), or imported before (ALREADY_EXISTS), whatever became of that
request since -- so importing a file again, as CSV or XLSX, creates nothing, even after its requests were
closed. Another need of the same requester is a request of its own: submit flags it as a probable
duplicate (duplicate_of) for verification to decide, as it does for one request submitted by hand.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from core.errors import DomainError, Validator
from core.i18n import Text, _
from core.imports.communities import Issues, not_numbers, number
from core.imports.lookup import Districts, fold
from core.imports.spec import WRITE, Column, ImportReport, Row, report_progress
from core.models import Community, HelpRequest
from core.services import access, help_requests
from core.services.common import constraint_name
from core.services.context import ServiceContext
from core.services.validation import normalize_phone
from core.vocab import PopulationTag, RequestCategory, Role, Urgency

E = TypeVar("E", bound=StrEnum)

# Words a form's answer may use for each value (besides the value itself and its English words).
CATEGORY_WORDS: dict[RequestCategory, tuple[str, ...]] = {
    RequestCategory.MEDICINE: ("药品", "药物", "买药", "送药", "取药", "配药", "医药"),
    RequestCategory.FOOD: ("食品", "食物", "粮食", "蔬菜", "吃饭", "餐食"),
    RequestCategory.DAILY_SUPPLIES: ("生活用品", "日用品", "生活物资", "日常用品"),
    RequestCategory.MEDICAL_CARE: ("就医", "医疗", "就诊", "看病", "医疗护理", "转运"),
    RequestCategory.PSYCHOLOGICAL: ("心理", "心理疏导", "心理支持", "心理援助", "心理咨询"),
    RequestCategory.EPIDEMIC_PREVENTION_SUPPLIES: ("防疫物资", "防疫用品", "防护用品", "口罩"),
    RequestCategory.OTHER: ("其他", "其它"),
}
URGENCY_WORDS: dict[Urgency, tuple[str, ...]] = {
    Urgency.CRITICAL: ("特急", "危急", "非常紧急", "十万火急", "紧急危重"),
    Urgency.HIGH: ("紧急", "急", "高", "较急", "urgent"),
    Urgency.NORMAL: ("一般", "普通", "中", "正常", "medium"),
    Urgency.LOW: ("不急", "低", "较低", "不紧急"),
}
POPULATION_WORDS: dict[PopulationTag, tuple[str, ...]] = {
    PopulationTag.ELDERLY: ("老人", "老年人", "高龄老人", "独居老人"),
    PopulationTag.PREGNANT: ("孕妇", "孕产妇"),
    PopulationTag.CHILD: ("儿童", "婴幼儿", "孩子", "婴儿"),
    PopulationTag.DISABLED: ("残疾人", "残障人士", "残疾"),
    PopulationTag.CHRONIC_PATIENT: ("慢性病患者", "慢性病", "慢病患者"),
    PopulationTag.STRANDED_NON_RESIDENT: ("滞留人员", "外地滞留人员", "滞留"),
    PopulationTag.FRONT_LINE_WORKER: ("一线人员", "一线工作者", "医护人员"),
}
_LIST_SEPARATORS = re.compile(r"[,，、;；/|\n]+")
_DATE_PARTS = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_ONE_DIGIT_HOUR = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T])(\d:)")

# The mutation's input field (last element of its error path) -> the import field.
_PATHS = {
    "communityId": "community",
    "title": "title",
    "description": "description",
    "category": "category",
    "urgency": "urgency",
    "populationTags": "population_tags",
    "beneficiaries": "beneficiaries",
    "volunteersNeeded": "volunteers_needed",
    "requiredSkills": "required_skills",
    "requesterName": "requester_name",
    "requesterPhone": "requester_phone",
    "requesterAddress": "requester_address",
    "healthDetails": "health_details",
    "neededBy": "needed_by",
    "latitude": "latitude",
    "longitude": "longitude",
    "district": "district",
}


def _words(members: dict[E, tuple[str, ...]]) -> dict[str, E]:
    out: dict[str, E] = {}
    for member, words in members.items():
        for word in (member.value, member.name, member.value.replace("_", " "), *words):
            out[fold(word)] = member
    return out


CATEGORIES = _words(CATEGORY_WORDS)
URGENCIES = _words(URGENCY_WORDS)
POPULATIONS = _words(POPULATION_WORDS)


def choice(v: Validator, field: str, text: str, words: dict[str, E], label: Text, *, required: bool) -> E | None:
    if not text:
        if required:
            v.add(("input", field), "REQUIRED", "{label} must not be empty.", label=label)
        return None
    found = words.get(fold(text))
    if found is None:
        v.add(
            ("input", field),
            "INVALID_INPUT",
            "{label}: “{value}” is not one of the choices.",
            label=label,
            value=text[:40],
        )
    return found


def needed_by(v: Validator, text: str, ctx: ServiceContext) -> datetime | None:
    """A date-time as a sheet holds it (2026-12-01 18:00, 2026/12/01T18:00, ISO with an offset), in the
    caller's zone unless it names an offset; a date alone means the end of that day."""
    if not text:
        return None
    cleaned = unicodedata.normalize("NFKC", text).strip().replace("/", "-").replace("年", "-").replace("月", "-")
    cleaned = " ".join(cleaned.replace("日", " ").split())
    # Sheets and forms write 2026/12/1 9:00 as often as 2026-12-01 09:00 (fromisoformat wants the zeros).
    cleaned = _DATE_PARTS.sub(lambda m: f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}", cleaned)
    cleaned = _ONE_DIGIT_HOUR.sub(r"\g<1>0\g<2>", cleaned)
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        v.add(("input", "neededBy"), "INVALID_INPUT", "“{value}” is not a date and time.", value=text[:40])
        return None
    if len(cleaned) <= 10:  # a date without a time
        value = datetime.combine(value.date(), time(23, 59))
    if value.tzinfo is None:
        value = value.replace(tzinfo=ctx.local_zone())
    return value


def listed(text: str) -> list[str]:
    return [item.strip() for item in _LIST_SEPARATORS.split(text) if item.strip()]


class RequestsKind:
    name = "requests"
    permission = "requests.create"
    columns = (
        Column(
            "submission_id",
            ("序号", "编号", "提交序号", "答卷编号", "问卷编号", "提交编号", "submission id", "submission", "id", "no"),
            False,
            _("Submission number"),
        ),
        Column("community", ("社区", "社区名称", "所在社区", "小区", "小区名称", "community"), True, _("Community")),
        Column("district", ("所在区县", "所在区", "区县", "区", "district"), False, _("District")),
        Column(
            "title",
            ("标题", "需求标题", "求助标题", "求助事项", "需求", "求助需求", "title", "need"),
            # Many forms ask only for a description: the title is then its first words (derived_title).
            False,
            _("Title"),
        ),
        Column(
            "description",
            (
                "详情",
                "需求详情",
                "详细描述",
                "描述",
                "需求描述",
                "求助内容",
                "求助描述",
                "需求内容",
                "具体情况",
                "情况说明",
                "具体需求",
                "description",
                "details",
            ),
            False,
            _("Description"),
        ),
        Column(
            "category", ("类别", "需求类别", "求助类别", "需求类型", "类型", "category", "type"), True, _("Category")
        ),
        Column("urgency", ("紧急程度", "紧急度", "优先级", "urgency", "priority"), True, _("Urgency")),
        Column(
            "requester_name",
            ("求助人", "求助人姓名", "联系人", "联系人姓名", "姓名", "requester", "requester name", "name"),
            True,
            _("The requester's name"),
        ),
        Column(
            "requester_phone",
            ("求助人电话", "联系电话", "联系人电话", "手机号", "手机号码", "电话", "requester phone", "phone"),
            True,
            _("The requester's phone"),
        ),
        Column("requester_address", ("地址", "住址", "详细地址", "address"), False, _("Address")),
        Column("beneficiaries", ("受益人数", "人数", "涉及人数", "beneficiaries", "people"), False, _("Beneficiaries")),
        Column(
            "volunteers_needed",
            ("需要志愿者人数", "所需志愿者", "志愿者人数", "volunteers needed"),
            False,
            _("Volunteers needed"),
        ),
        Column(
            "needed_by",
            ("截止时间", "需要时间", "最晚时间", "需求时间", "需要送达时间", "needed by", "deadline"),
            False,
            _("Needed by"),
        ),
        Column(
            "population_tags", ("人群", "人群类别", "特殊人群", "population", "population tags"), False, _("Population")
        ),
        Column("required_skills", ("所需技能", "技能要求", "required skills", "skills"), False, _("Required skills")),
        Column(
            "health_details", ("健康状况", "健康信息", "病情", "health", "health details"), False, _("Health details")
        ),
        Column("latitude", ("纬度", "latitude", "lat"), False, _("Latitude")),
        Column("longitude", ("经度", "longitude", "lng", "lon"), False, _("Longitude")),
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
        access.require(ctx, self.permission)
        if access.role_of(ctx.viewer) not in (Role.PLATFORM_ADMIN, Role.SYSTEM) and (
            organization_id != ctx.viewer.organization_id
        ):
            # submit() lets whoever may post requests post them for communities in their reach, all of
            # their own organisation; an import naming another organisation is refused as a whole.
            raise DomainError(
                "FORBIDDEN", "Only {what} of your organisation.", ("organizationId",), what=_("help requests")
            )
        issues = Issues(report, _PATHS)
        districts = await Districts.load(ctx)
        # The organisation's communities the viewer may post for (the mutation's scope check), by folded name.
        reachable = (
            await ctx.session.execute(
                select(Community.id, Community.name, Community.district_id).where(
                    Community.organization_id == organization_id, access.community_scope(ctx.viewer)
                )
            )
        ).all()
        by_name: dict[str, list[tuple[int, int]]] = {}
        for id_, name, district_id in reachable:
            by_name.setdefault(fold(name), []).append((id_, district_id))
        # Each row read into submit's input first (its words, numbers, community and time understood), its key
        # made of those values, then one query for the keys imported before.
        read = [self._read(ctx, row, districts, by_name) for row in rows]
        keys = [
            None if v.errors else import_key(organization_id, row.values, data)
            for row, (data, v) in zip(rows, read, strict=True)
        ]
        imported = await _imported(ctx, organization_id, [k for k in keys if k is not None])
        seen: dict[str, int] = {}
        now = ctx.now()
        for done, (row, (prepared, v), key) in enumerate(zip(rows, read, keys, strict=True), 1):
            if done % PROGRESS_EVERY == 0:
                report_progress(WRITE, done, len(rows))
            if key is not None and key in imported:
                # Before the rules of submit: a row imported last week is not "in the past" now, just done.
                _already(issues, row)
                continue
            help_requests.checked_fields(v, prepared, now)  # (also for a row not read: all its problems at once)
            if key is None or v.errors:
                issues.reject(issues.from_errors(row, v.errors))
                continue
            if key in seen:
                issues.duplicate(row, None, _("The same request as row {earlier}."), earlier=seen[key])
                continue
            seen[key] = row.number
            if dry_run:
                report.created += 1
                continue
            try:
                async with ctx.session.begin_nested():
                    request = await help_requests.submit(ctx, prepared)
                    request.import_key = key
                    await _only_within(ctx, request, organization_id)
                    await ctx.session.flush()
            except DomainError as refused:
                issues.reject(issues.from_errors(row, refused.errors))
                continue
            except IntegrityError as exc:
                if constraint_name(exc) != IMPORT_KEY_INDEX:
                    raise
                _already(issues, row)  # imported by another transaction meanwhile (a concurrent import)
                continue
            report.created += 1

    def _read(
        self,
        ctx: ServiceContext,
        row: Row,
        districts: Districts,
        by_name: dict[str, list[tuple[int, int]]],
    ) -> tuple[help_requests.HelpRequestInput, Validator]:
        """The row as submit's input, and the problems of reading it (a word not among the choices, a community
        not found, not a number, not a time). submit's own rules (checked_fields) are not applied yet: the row's
        key is made of what was read, and a row imported before is reported as such whatever they say now."""
        cells = row.values
        v = Validator()
        community_id = self._community(v, cells.get("community", ""), cells.get("district", ""), districts, by_name)
        category = choice(v, "category", cells.get("category", ""), CATEGORIES, _("Category"), required=True)
        urgency = choice(v, "urgency", cells.get("urgency", ""), URGENCIES, _("Urgency"), required=True)
        tags = [
            tag
            for word in listed(cells.get("population_tags", ""))
            if (tag := choice(v, "populationTags", word, POPULATIONS, _("Population"), required=False)) is not None
        ]
        beneficiaries = number(
            v, ("input", "beneficiaries"), cells.get("beneficiaries", ""), _("Beneficiaries"), integer=True
        )
        needed = number(
            v, ("input", "volunteersNeeded"), cells.get("volunteers_needed", ""), _("Volunteers needed"), integer=True
        )
        latitude = number(v, ("input", "latitude"), cells.get("latitude", ""), _("Latitude"))
        longitude = number(v, ("input", "longitude"), cells.get("longitude", ""), _("Longitude"))
        if not_numbers(v, "latitude", "longitude"):
            latitude = longitude = None  # said once, not again as "latitude and longitude go together"
        data = help_requests.HelpRequestInput(
            community_id=community_id or 0,
            title=cells.get("title", "") or derived_title(cells.get("description", "")),
            category=category or RequestCategory.OTHER,
            urgency=urgency or Urgency.NORMAL,
            requester_name=cells.get("requester_name", ""),
            requester_phone=cells.get("requester_phone", ""),
            description=cells.get("description", ""),
            population_tags=tags,
            beneficiaries=1 if beneficiaries is None else int(beneficiaries),
            volunteers_needed=1 if needed is None else int(needed),
            needed_by=needed_by(v, cells.get("needed_by", ""), ctx),
            required_skills=listed(cells.get("required_skills", "")),
            requester_address=cells.get("requester_address", ""),
            health_details=cells.get("health_details", ""),
            latitude=latitude,
            longitude=longitude,
        )
        return data, v

    @staticmethod
    def _community(
        v: Validator, name: str, district: str, districts: Districts, by_name: dict[str, list[tuple[int, int]]]
    ) -> int | None:
        if not name:
            v.add(("input", "communityId"), "REQUIRED", "{label} must not be empty.", label=_("Community"))
            return None
        candidates = by_name.get(fold(name), [])
        if district:
            district_id = districts.find(district)
            if district_id is None:
                v.add(("input", "district"), "NOT_FOUND", "No district is called “{value}”.", value=district[:40])
                return None
            candidates = [c for c in candidates if c[1] == district_id]
        if not candidates:
            v.add(("input", "communityId"), "NOT_FOUND", "No community of yours is called “{value}”.", value=name[:40])
            return None
        if len(candidates) > 1:
            v.add(
                ("input", "communityId"),
                "INVALID_INPUT",
                "Several communities are called “{value}”: add the district.",
                value=name[:40],
            )
            return None
        return candidates[0][0]


IMPORT_KEY_INDEX = "uq_help_requests_import_key"
# How often (rows) the import's progress hears of the write.
PROGRESS_EVERY = 100
_IMPORTED = text(
    "SELECT import_key FROM help_requests WHERE organization_id = :org AND import_key = ANY(CAST(:keys AS varchar[]))"
)


def import_key(organization_id: int, cells: dict[str, str], data: help_requests.HelpRequestInput) -> str:
    """The key of a row: a hash of what the row says, as read (`data`: the community found, the category and
    urgency understood, the needed-by time as an instant), not of its cells' text -- the same form saved as CSV
    and as XLSX (2026/12/1 18:00 and a date cell), 药品 or 买药, 138 1234 5678 or 13812345678 are one row.

    - With the form's submission id (序号, 问卷编号): the organisation, that id, the requester's phone and the
      community. A submission corrected since (a word of its description, its urgency) is still the row
      imported before. The phone and community keep a 序号 that restarts at 1 in another form or hand-kept
      sheet from being taken for the first form's row 1 (unless it is the same requester in the same
      community under the same number).
    - Without: the organisation, community, category, urgency, phone, needed-by instant and the requester's
      name, title and description (compared as names are: NFKC, no spaces, case-folded). Another need of the
      same requester is a row of its own (submit then flags it a probable duplicate); a row corrected since
      is one too, as nothing else tells it is the same submission.
    Cells not named here (address, counts, tags) do not make a row another one.

    The recipe changed after migration 0015 (which added the column) without a migration: the column holds a
    SHA-256 of whatever the import puts in it, compared only with keys the import makes, and no release
    stored keys of the earlier recipe (they were never on a deployment's data)."""
    phone = normalize_phone(data.requester_phone) or fold(data.requester_phone)
    submission = fold(cells.get("submission_id", ""))
    if submission:
        parts = ["submission", str(organization_id), submission, phone, str(data.community_id)]
    else:
        needed_by = data.needed_by.astimezone(UTC).isoformat() if data.needed_by is not None else ""
        parts = [
            "row",
            str(organization_id),
            str(data.community_id),
            RequestCategory(data.category).value,
            Urgency(data.urgency).value,
            phone,
            needed_by,
            fold(data.requester_name),
            fold(data.title),
            fold(data.description),
        ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


async def _imported(ctx: ServiceContext, organization_id: int, keys: list[str]) -> set[str]:
    """Those of `keys` a request of the organisation was imported from (one query; an array parameter, not
    one bind per key)."""
    result = await ctx.session.execute(_IMPORTED, {"org": organization_id, "keys": sorted(set(keys))})
    return set(result.scalars().all())


def _already(issues: Issues, row: Row) -> None:
    # Says nothing of the request (which the caller may no longer see): that this row was imported before.
    issues.report.duplicates.append(
        issues.make(row, None, "ALREADY_EXISTS", _("This row was imported before; it is not imported again."))
    )


async def _only_within(ctx: ServiceContext, request: HelpRequest, organization_id: int) -> None:
    """submit's probable-duplicate flag, kept only when it names a request of the organisation imported into
    (its check does not filter by organisation: a platform administrator importing into one organisation
    would see the new request flagged as a duplicate of another organisation's)."""
    if request.duplicate_of_id is None:
        return
    owner = await ctx.session.scalar(
        select(HelpRequest.organization_id).where(HelpRequest.id == request.duplicate_of_id)
    )
    if owner != organization_id:
        request.duplicate_of_id = None


REQUESTS = RequestsKind()


TITLE_WORDS = 30


def derived_title(description: str) -> str:
    """A title for a row that has only a description: its first line, cut at TITLE_WORDS characters."""
    first = description.strip().splitlines()[0].strip() if description.strip() else ""
    return first if len(first) <= TITLE_WORDS else first[: TITLE_WORDS - 1] + "…"
