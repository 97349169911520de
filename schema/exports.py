"""Exports: the lists a coordinator works with, as GraphQL queries of the public API (core.ExportDefinition).

Core's own definitions are here; plugins add theirs through the `register_exports` hook. yunshegong/exports.py
runs them page by page for the caller (GET /export/{name}.csv|.xlsx); the `exports` query lists what the
caller can download, for front ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import strawberry
from graphql import OperationDefinitionNode, parse
from strawberry import Info

from core.i18n import _, translate
from core.plugin_api import EXPORT_KINDS, ExportColumn, ExportDefinition, camel_prefix, describe
from core.plugins import PluginHost, PluginLoadError
from core.services import access
from core.services import plugins as plugin_service

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
        document=f"query Export($first: Int!) {{ queue(first: $first) {{ unverified {{ {_REQUEST_FIELDS} }} }} }}",
        connection="queue.unverified",
        columns=_REQUEST_COLUMNS,
        permission="requests.coordinate",
    ),
    ExportDefinition(
        name="queueUnmatched",
        label=_("Queue: requests to match"),
        document=f"query Export($first: Int!) {{ queue(first: $first) {{ unmatched {{ {_REQUEST_FIELDS} }} }} }}",
        connection="queue.unmatched",
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
        document=f"""query Export($first: Int!) {{
  overdue(first: $first) {{ stage dueAt request {{ {_REQUEST_FIELDS} }} }}
}}""",
        connection="overdue",
        columns=(
            C("stage", _("Stage"), "stage"),
            C("dueAt", _("Due at"), "dueAt", "datetime"),
            *(ExportColumn(c.key, c.header, f"request.{c.path}", c.kind) for c in _REQUEST_COLUMNS),
        ),
        permission="requests.read",
    ),
)


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
