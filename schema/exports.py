"""Exports: the lists a coordinator works with, as GraphQL queries of the public API (core.ExportDefinition).

Core's own definitions are here; plugins add theirs through the `register_exports` hook. yunshegong/exports.py
runs them page by page for the caller (GET /export/{name}.csv|.xlsx); the `exports` query lists what the
caller can download, for front ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLType,
    OperationDefinitionNode,
    get_named_type,
    get_nullable_type,
    parse,
)
from strawberry import Info

from core.i18n import Text, _, translate
from core.plugin_api import EXPORT_KINDS, ExportColumn, ExportDefinition, camel_prefix, describe
from core.plugins import PluginHost, PluginLoadError
from core.services import access
from core.services import plugins as plugin_service
from core.services.deadlines import REQUEST_SECTIONS, QueueSection
from core.vocab import AssignmentStatus as AssignmentStatusValue
from core.vocab import (
    Availability,
    EscalationStage,
    RequestCategory,
    Team,
    Urgency,
    VolunteerMode,
    label,
)
from core.vocab import RequestStatus as RequestStatusValue

FORMATS = ("csv", "xlsx")
EXPORT_NAME = re.compile(r"^[a-z][A-Za-z0-9]{1,63}$")
# The variables the host sets itself on every page: the page size and the cursor.
PAGING_VARIABLES = frozenset({"first", "after"})

C = ExportColumn

_REQUEST_FIELDS = (
    "title category urgency status beneficiaries volunteersNeeded requesterName requesterPhone requesterAddress "
    "neededBy createdAt community { name district { name } }"
)
_REQUEST_COLUMNS = (
    C("title", _("Title"), "title"),
    C("category", _("Category"), "category"),
    C("urgency", _("Urgency"), "urgency"),
    C("status", _("Status"), "status"),
    C("community", _("Community"), "community.name"),
    C("district", _("District"), "community.district.name"),
    C("requesterName", _("Requester"), "requesterName"),
    C("requesterPhone", _("Requester phone"), "requesterPhone"),
    C("requesterAddress", _("Requester address"), "requesterAddress"),
    C("beneficiaries", _("Beneficiaries"), "beneficiaries", "number"),
    C("volunteersNeeded", _("Volunteers needed"), "volunteersNeeded", "number"),
    C("neededBy", _("Needed by"), "neededBy", "datetime"),
    C("createdAt", _("Submitted at"), "createdAt", "datetime"),
)


def _queue_status(section: QueueSection) -> str:
    """The GraphQL name of the request status that puts a request in `section` of the coordinator's queue
    (core.services.deadlines.REQUEST_SECTIONS, the rule `queue` lists by)."""
    return next(status for status, held in REQUEST_SECTIONS.items() if held == section).upper()


def _queue_document(section: QueueSection) -> str:
    """A part of the queue as the paged helpRequests list with the queue's rule (its status, most urgent
    first, the request scope): `queue` itself is one page with no cursor, and an export must never stop at
    one page without saying so."""
    return f"""query Export($first: Int, $after: String) {{
  helpRequests(first: $first, after: $after, filter: {{statuses: [{_queue_status(section)}]}}, orderBy: URGENCY) {{
    nodes {{ {_REQUEST_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""


_OFFER_FIELDS = (
    "status offeredAt respondedAt finishedAt hours volunteer { name phone } request { title community { name } }"
)

CORE_EXPORTS: tuple[ExportDefinition, ...] = (
    ExportDefinition(
        name="volunteers",
        label=_("Volunteers"),
        document="""query Export($first: Int, $after: String, $filter: VolunteerFilter) {
  volunteers(first: $first, after: $after, filter: $filter) {
    nodes { name phone mode teams skills availability district { name } organization { name }
            hoursServed activeAssignmentCount createdAt }
    pageInfo { hasNextPage endCursor }
  }
}""",
        connection="volunteers",
        columns=(
            C("name", _("Name"), "name"),
            C("phone", _("Phone"), "phone"),
            C("mode", _("Mode"), "mode"),
            C("teams", _("Teams"), "teams"),
            C("skills", _("Skills"), "skills"),
            C("availability", _("Availability"), "availability"),
            C("district", _("District"), "district.name"),
            C("organization", _("Organisation"), "organization.name"),
            C("hoursServed", _("Hours served"), "hoursServed", "number"),
            C("activeAssignments", _("Active assignments"), "activeAssignmentCount", "number"),
            C("createdAt", _("Registered at"), "createdAt", "datetime"),
        ),
        variables=("filter",),
        permission="volunteers.read",
    ),
    ExportDefinition(
        name="communities",
        label=_("Communities"),
        document="""query Export($first: Int, $after: String, $filter: CommunityFilter) {
  communities(first: $first, after: $after, filter: $filter) {
    nodes { name street latitude longitude headName headPhone district { name } organization { name } createdAt }
    pageInfo { hasNextPage endCursor }
  }
}""",
        connection="communities",
        # Headers the communities import recognises (core.imports.communities aliases), in either language, so
        # a download goes back in as it is.
        columns=(
            C("name", _("Community name"), "name"),
            C("district", _("District"), "district.name"),
            C("street", _("Address"), "street"),
            C("latitude", _("Latitude"), "latitude", "number"),
            C("longitude", _("Longitude"), "longitude", "number"),
            C("headName", _("Head"), "headName"),
            C("headPhone", _("Head phone"), "headPhone"),
            C("organization", _("Organisation"), "organization.name"),
            C("createdAt", _("Created at"), "createdAt", "datetime"),
        ),
        variables=("filter",),
        permission="communities.read",
    ),
    ExportDefinition(
        name="helpRequests",
        label=_("Help requests"),
        document=f"""query Export($first: Int, $after: String, $filter: HelpRequestFilter,
             $orderBy: HelpRequestOrder! = URGENCY) {{
  helpRequests(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {{
    nodes {{ {_REQUEST_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}""",
        connection="helpRequests",
        columns=_REQUEST_COLUMNS,
        variables=("filter", "orderBy"),
        permission="requests.read",
    ),
    ExportDefinition(
        name="assignments",
        label=_("Assignments of help requests"),
        document="""query Export($first: Int, $after: String, $filter: HelpRequestFilter,
             $orderBy: HelpRequestOrder! = URGENCY) {
  helpRequests(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    nodes { title urgency community { name district { name } }
            assignments { status offeredAt respondedAt finishedAt hours volunteer { name phone } } }
    pageInfo { hasNextPage endCursor }
  }
}""",
        connection="helpRequests",
        rows="assignments",
        columns=(
            C("request", _("Help request"), "title"),
            C("urgency", _("Urgency"), "urgency"),
            C("community", _("Community"), "community.name"),
            C("district", _("District"), "community.district.name"),
            C("volunteer", _("Volunteer"), "assignments.volunteer.name"),
            C("volunteerPhone", _("Volunteer phone"), "assignments.volunteer.phone"),
            C("status", _("Status"), "assignments.status"),
            C("offeredAt", _("Offered at"), "assignments.offeredAt", "datetime"),
            C("respondedAt", _("Answered at"), "assignments.respondedAt", "datetime"),
            C("finishedAt", _("Finished at"), "assignments.finishedAt", "datetime"),
            C("hours", _("Hours"), "assignments.hours", "number"),
        ),
        variables=("filter", "orderBy"),
        permission="requests.read",
    ),
    ExportDefinition(
        name="queueUnverified",
        label=_("Queue: requests to verify"),
        document=_queue_document(QueueSection.UNVERIFIED),
        connection="helpRequests",
        columns=_REQUEST_COLUMNS,
        permission="requests.coordinate",
    ),
    ExportDefinition(
        name="queueUnmatched",
        label=_("Queue: requests to match"),
        document=_queue_document(QueueSection.UNMATCHED),
        connection="helpRequests",
        columns=_REQUEST_COLUMNS,
        permission="requests.coordinate",
    ),
    ExportDefinition(
        name="queuePendingOffers",
        label=_("Queue: offers awaiting an answer"),
        document=f"query Export($first: Int!) {{ queue(first: $first) {{ pendingOffers {{ {_OFFER_FIELDS} }} }} }}",
        connection="queue.pendingOffers",
        columns=(
            C("request", _("Help request"), "request.title"),
            C("community", _("Community"), "request.community.name"),
            C("volunteer", _("Volunteer"), "volunteer.name"),
            C("volunteerPhone", _("Volunteer phone"), "volunteer.phone"),
            C("status", _("Status"), "status"),
            C("offeredAt", _("Offered at"), "offeredAt", "datetime"),
        ),
        permission="requests.coordinate",
    ),
    ExportDefinition(
        name="overdue",
        label=_("Overdue requests"),
        # The paged helpRequests list with the `overdue` query's rule (filter overdue: deadlines.is_overdue), read
        # to its end: `overdue` itself is one piece of at most a page. Its stage is the request's status (the
        # target follows from it); the due time is not a field of a request, so the list has no such column.
        document=f"""query Export($first: Int, $after: String) {{
  helpRequests(first: $first, after: $after, filter: {{overdue: true}}, orderBy: URGENCY) {{
    nodes {{ {_REQUEST_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}""",
        connection="helpRequests",
        columns=_REQUEST_COLUMNS,
        permission="requests.read",
    ),
)


# How an export writes the API's enum values: in the caller's words (线上 / online), not as GraphQL's ONLINE,
# by the enum's GraphQL type (found from the schema, see column_enums). Statuses, modes and availability are
# the words core's messages use already (core.vocab.LABELS). An enum not listed here (plugins' own) is written
# as the API gives it.
ENUM_LABELS: dict[str, dict[str, Text]] = {
    "RequestStatus": {s.name: label(s) for s in RequestStatusValue},
    "AssignmentStatus": {s.name: label(s) for s in AssignmentStatusValue},
    "Availability": {a.name: label(a) for a in Availability},
    "VolunteerMode": {m.name: label(m) for m in VolunteerMode},
    # The words the requests import reads back (core.imports.requests.URGENCY_WORDS, CATEGORY_WORDS).
    "Urgency": {
        Urgency.CRITICAL.name: _("critical"),
        Urgency.HIGH.name: _("high"),
        Urgency.NORMAL.name: _("normal"),
        Urgency.LOW.name: _("low"),
    },
    "RequestCategory": {
        RequestCategory.MEDICINE.name: _("medicine"),
        RequestCategory.FOOD.name: _("food"),
        RequestCategory.DAILY_SUPPLIES.name: _("daily supplies"),
        RequestCategory.MEDICAL_CARE.name: _("medical care"),
        RequestCategory.PSYCHOLOGICAL.name: _("psychological"),
        RequestCategory.EPIDEMIC_PREVENTION_SUPPLIES.name: _("epidemic prevention supplies"),
        RequestCategory.OTHER.name: _("other"),
    },
    "Team": {
        Team.RECRUITMENT.name: _("recruitment"),
        Team.TRAINING.name: _("training"),
        Team.EXTERNAL_LIAISON.name: _("external liaison"),
        Team.COMMUNITY_LIAISON.name: _("community liaison"),
        Team.SUPPLIES_MANAGEMENT.name: _("supplies management"),
        Team.DELIVERY.name: _("delivery"),
        Team.OPINION_MONITORING.name: _("opinion monitoring"),
        Team.PSYCHOLOGICAL_SUPPORT.name: _("psychological support"),
        Team.PUBLICITY.name: _("publicity"),
    },
    "EscalationStage": {
        EscalationStage.VERIFICATION.name: _("verification"),
        EscalationStage.MATCHING.name: _("matching"),
        EscalationStage.FULFILMENT.name: _("fulfilment"),
    },
}


@dataclass(frozen=True)
class Export:
    """A definition checked and ready to run: who owns it (None: core) and what its document declares."""

    definition: ExportDefinition
    plugin: str | None
    declared: frozenset[str]  # the document's variable names

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def paged(self) -> bool:
        """A connection, read page after page (else a plain list, read once)."""
        return "after" in self.declared


def _output_type(schema: GraphQLSchema, parts: list[str]) -> GraphQLType | None:
    """The type of the field at `parts` below Query (through lists), None when a part is not a field."""
    current: GraphQLType = schema.query_type  # type: ignore[assignment]
    for part in parts:
        named = get_named_type(current)
        if not isinstance(named, (GraphQLObjectType, GraphQLInterfaceType)) or part not in named.fields:
            return None
        current = named.fields[part].type
    return current


def column_enums(schema: GraphQLSchema, export: Export) -> tuple[str | None, ...]:
    """For each column of `export`, the name of its GraphQL enum type (None: not an enum, or a path the
    schema does not name, e.g. through an alias)."""
    parts = export.definition.connection.split(".")
    found = _output_type(schema, parts)
    if found is not None and not isinstance(get_nullable_type(found), GraphQLList):
        named = get_named_type(found)
        if isinstance(named, (GraphQLObjectType, GraphQLInterfaceType)) and "nodes" in named.fields:
            parts.append("nodes")  # a connection: its nodes are the rows
    names: list[str | None] = []
    for column in export.definition.columns:
        kind = _output_type(schema, [*parts, *column.path.split(".")])
        named = get_named_type(kind) if kind is not None else None
        names.append(named.name if isinstance(named, GraphQLEnumType) else None)
    return tuple(names)


def _check(definition: object, owner: str, plugin: str | None = None) -> Export:
    if not isinstance(definition, ExportDefinition):
        raise PluginLoadError(
            f"{owner}: register_exports must return ExportDefinition objects, got {describe(definition)}"
        )
    d = definition
    where = f"{owner}: export {d.name!r}"
    if not isinstance(d.name, str) or not EXPORT_NAME.match(d.name):
        raise PluginLoadError(f"{where}: the name must be lowerCamelCase letters and digits")
    try:
        document = parse(d.document)
    except Exception as exc:  # graphql's syntax error names the line; startup stops here, not at the first download
        raise PluginLoadError(f"{where}: the document does not parse: {exc}") from exc
    operations = [o for o in document.definitions if isinstance(o, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation.value != "query" or len(document.definitions) != 1:
        raise PluginLoadError(f"{where}: the document must be exactly one query (no fragments, no mutation)")
    declared = frozenset(v.variable.name.value for v in operations[0].variable_definitions or ())
    if "after" in declared and "first" not in declared:
        raise PluginLoadError(f"{where}: a paged document declares $first (the page size) beside $after")
    unknown = set(d.variables) - declared
    if unknown or set(d.variables) & PAGING_VARIABLES:
        raise PluginLoadError(
            f"{where}: variables {sorted(unknown or set(d.variables) & PAGING_VARIABLES)} are not "
            "the document's own filter variables"
        )
    if not d.columns or len({c.key for c in d.columns}) != len(d.columns):
        raise PluginLoadError(f"{where}: columns must be given, each key once")
    for column in d.columns:
        if not isinstance(column, ExportColumn) or column.kind not in EXPORT_KINDS or not column.path:
            raise PluginLoadError(
                f"{where}: column {column!r} must be an ExportColumn with a path and a kind among {EXPORT_KINDS}"
            )
    return Export(d, plugin, declared)


def collect(host: PluginHost | None) -> dict[str, Export]:
    """Core's exports and the loaded plugins', by name, each checked. A malformed definition, a plugin's name
    outside its namespace or a name used twice stops startup naming the plugin (PluginLoadError)."""
    found: dict[str, Export] = {}
    for definition in CORE_EXPORTS:
        found[definition.name] = _check(definition, "core")
    for plugin, returned in host.call_each("register_exports") if host is not None else []:
        owner = f"plugin {plugin.name!r}"
        if not isinstance(returned, (list, tuple)):
            raise PluginLoadError(f"{owner}: register_exports must return a list, got {describe(returned)}")
        for definition in returned:
            export = _check(definition, owner, plugin.name)
            if not export.name.startswith(camel_prefix(plugin.name)):
                raise PluginLoadError(f"{owner}: export {export.name!r} must start with {camel_prefix(plugin.name)!r}")
            if export.name in found:
                by = found[export.name].plugin or "core"
                raise PluginLoadError(f"export {export.name!r} is defined by both {by!r} and {plugin.name!r}")
            found[export.name] = export
    return found


_COLLECTED: dict[int, dict[str, Export]] = {}


def exports_of(host: PluginHost | None) -> dict[str, Export]:
    """collect(host), once per host (the hook is called once per process)."""
    key = id(host)
    if key not in _COLLECTED:
        _COLLECTED[key] = collect(host)
    return _COLLECTED[key]


# -- the `exports` query ---------------------------------------------------------------------------------------


@strawberry.type(description="A column of an export: its stable key, its header in your language, its kind.")
class ExportColumnInfo:
    key: str
    header: str
    kind: str = strawberry.field(description="text, number, date or datetime.")


@strawberry.type(description="A list you can download: GET /export/{name}.csv or .xlsx with your credential.")
class ExportInfo:
    name: str
    label: str
    plugin: str | None = strawberry.field(description="The plugin that offers it; null for core's.")
    columns: list[ExportColumnInfo]
    variables: list[str] = strawberry.field(description="Variables you may pass (JSON in `?variables=`).")
    formats: list[str]


async def _available(ctx: object, host: PluginHost | None) -> list[Export]:
    access.require_signed_in(ctx)  # type: ignore[arg-type]
    enabled = await plugin_service.enabled_plugins(ctx)  # type: ignore[arg-type]
    viewer = ctx.viewer  # type: ignore[attr-defined]
    return [
        e
        for e in exports_of(host).values()
        if (e.plugin is None or e.plugin in enabled)
        and (e.definition.permission is None or access.can(viewer, e.definition.permission))
    ]


@strawberry.type
class ExportsQuery:
    @strawberry.field(
        description="The lists you can download as CSV or XLSX (GET /export/{name}.csv|.xlsx), with their columns "
        "in your language. Each download runs its query as you: what you see and what is masked is the same."
    )
    async def exports(self, info: Info) -> list[ExportInfo]:
        found = await info.context.read(_available, info.context.app.host)
        return [
            ExportInfo(
                name=e.name,
                label=translate(e.definition.label),
                plugin=e.plugin,
                columns=[
                    ExportColumnInfo(key=c.key, header=translate(c.header), kind=c.kind) for c in e.definition.columns
                ],
                variables=list(e.definition.variables),
                formats=list(FORMATS),
            )
            for e in found
        ]
