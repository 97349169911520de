"""Every hook a yunshegong plugin can implement. This module is the plugin API's reference.

Naming: `register_*` hooks contribute things (the host validates and merges what they return, and a
malformed contribution stops startup with a message naming the plugin); `on_*` hooks react to events.
Hooks are plain functions; any hook may return an awaitable instead of a value and the host awaits it
(pluggy itself is synchronous). Implement a hook with `@core.hookimpl` in your plugin module and declare
the module in the entry-point group `yunshegong.plugins`; see docs/plugins.md.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from core.delivery.channel import Channel
    from core.events import DomainEvent
    from core.jobs import Job
    from core.plugin_api import (
        ExportDefinition,
        GraphQLContribution,
        MatchCriterion,
        Permission,
        PluginInfo,
        StatFigure,
    )
    from core.services.context import ServiceContext
    from core.services.plugin_roles import PluginRole
    from core.services.referrals import ReferralTarget
    from core.services.residents import ResidentRelation
    from core.services.sealing import SealedColumn

PROJECT = "yunshegong"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------------------------------------
# identity
# ---------------------------------------------------------------------------------------------------------


@hookspec
def register_plugin() -> PluginInfo:  # type: ignore[empty-body]
    """Say who the plugin is. Required: a module without it is not a plugin.

    Called once, when the plugin manager is built at startup.
    Returns a `PluginInfo`: `name` (lower_snake_case, unique in the deployment; it prefixes the plugin's
    tables, GraphQL names, permissions and migration branch), `version`, `description`.
    """


# ---------------------------------------------------------------------------------------------------------
# contributions
# ---------------------------------------------------------------------------------------------------------


@hookspec
def register_graphql() -> GraphQLContribution:  # type: ignore[empty-body]
    """Contribute GraphQL schema pieces.

    Called once per schema build (at startup). Returns a `GraphQLContribution` with optional `query`,
    `mutation` and `subscription` strawberry types whose fields are merged into the root types, and
    `types`: extra types to include (e.g. implementations of an interface). Every root field name must
    start with the plugin's name in camelCase (`supplies` → `suppliesWarehouses`) and every type name
    with it in PascalCase (`SuppliesWarehouse`); a clash with core or another plugin stops startup naming
    both. The host makes every contributed root field and every contributed Node type answer
    `PLUGIN_DISABLED` for callers whose organisation has not enabled the plugin.
    """


@hookspec
def register_migrations() -> Path:  # type: ignore[empty-body]
    """Contribute an Alembic version directory for the plugin's own tables.

    Called by `yunshegong migrate` (and `serve`, which migrates first). Returns the directory. Its first
    revision carries `branch_labels = ("<plugin name>",)` and `depends_on = "0006"` (core's organisation
    isolation). Every table is organisation-owned (`core.organization_column()` and `core.own_table(...)`
    in the migration, `core.OrganizationOwned` on the model) or declared shared
    (`core.SharedByAllOrganizations`): the host refuses to load a plugin with an undeclared table, a first
    revision without the branch label, a `down_revision`/`depends_on` naming no known revision, or a table
    (model or migration) outside the `<plugin name>_` namespace. `yunshegong plugins remove NAME` drops the
    branch again.
    """


@hookspec
def register_permissions() -> list[Permission]:  # type: ignore[empty-body]
    """Contribute permissions the plugin's services check (e.g. `supplies.distribute`).

    Called once at startup. Returns a list of `Permission(name, description, default_roles, by_rank)`;
    names must start with `<plugin name>.` and be unique; `default_roles` are core role names (a typo stops
    startup). Platform administrators hold every permission by rank unless `by_rank=False` (a relation-only
    permission, e.g. reading confidential notes). Plugin roles (register_roles) grant them per account.
    """


@hookspec
def register_error_codes() -> dict[str, str]:  # type: ignore[empty-body]
    """Declare the error codes the plugin's services raise beyond core's (e.g. `INSUFFICIENT_STOCK`).

    Called once at startup. Returns {code: description}; codes are UPPER_SNAKE_CASE and must not redefine a
    core code (raise core's own codes as they are: NOT_FOUND, FORBIDDEN, ...). They join the one `ErrorCode`
    enum every mutation payload's `errors { code }` uses, with the description in the SDL. Two plugins may
    declare the same code (the first description is kept). A service raising an undeclared code is a
    programming error (the client gets INTERNAL_ERROR).
    """


@hookspec
def register_translations() -> dict[str, Path]:  # type: ignore[empty-body]
    """Give the translations of the plugin's messages: {locale: path of a gettext `.po` file}, locales being
    `core.i18n.LOCALES` ("zh_CN", "en").

    Called once at startup. The plugin raises English templates with values as parameters
    (`DomainError("TOO_LOUD", "At most {limit} exclamation marks.", ("input", "message"), limit=3)`); each
    caller reads them in the language of their `Accept-Language` (zh-CN by default). `yunshegong messages
    DIRECTORY --po FILE` adds the templates found in the plugin's code to its `.po` for the translator. A
    template without a translation is shown in English; core's wording wins over a plugin's for the same text.
    """


@hookspec
def register_roles() -> list[PluginRole]:  # type: ignore[empty-body]
    """Declare roles an organisation's administrator can grant to its accounts (a casework supervisor, a
    midwife), on top of the account's core role.

    Called once at startup (and cached). Returns `core.PluginRole(name, description, permissions)` objects:
    `name` is `<plugin name>.<role>`, `permissions` are names of the plugin's own permissions
    (register_permissions). `grantPluginRole` / `revokePluginRole` manage grants (administrators, for
    accounts of their own organisation, where the plugin is enabled); an account holds its grants'
    permissions from its next request on, and loses them at once when a grant is revoked.
    """


@hookspec
def register_event_types() -> list[type[DomainEvent]]:  # type: ignore[empty-body]
    """Declare the domain events this plugin publishes, so that other plugins can react to them by name.

    Called once at startup. Returns `DomainEvent` subclasses whose `name` starts with `<plugin name>.`.
    """


@hookspec
def register_referral_targets() -> list[ReferralTarget]:  # type: ignore[empty-body]
    """Offer the plugin's service as a destination of referrals (decisions.md: referrals and consent are
    core services that plugins use and extend).

    Called when a referral is sent or answered. Returns `core.ReferralTarget(name, description,
    receiving_permission, on_accepted=None)` objects: `name` is the plugin's name or `<plugin name>.<service>`
    (what consents name as their `target`); `receiving_permission` is the permission members of the receiving
    organisation need to accept, decline and complete such referrals; `on_accepted(ctx, referral, shared)`,
    if given, runs in the accepting transaction with what the consent lets the recipient copy about the
    resident (`core.referrals.SharedResident`): the plugin creates or attaches its own record there (its
    failure undoes the acceptance). A referral to a target that is not registered, or whose plugin the
    receiving organisation has not enabled, is refused (REFERRAL_TARGET_UNKNOWN, REFERRAL_TARGET_DISABLED).
    """


@hookspec
def register_resident_relations() -> list[ResidentRelation]:  # type: ignore[empty-body]
    """Say how the plugin's staff serve residents (decisions.md: confidential data by relation, not by rank).

    Called whenever residents are read or changed (keep it cheap: build a condition, query nothing). Returns
    `core.ResidentRelation(name, serves)` objects: `name` is the plugin's name or `<plugin name>.<relation>`;
    `serves(viewer, resident_id)` receives the caller (`core.Viewer`) and the `residents.id` column of the
    statement being built, and returns a SQLAlchemy condition on that column, true for the residents the
    caller serves by the plugin's relation (e.g. `resident_id.in_(select(Client.resident_id).where(...))`),
    or None when the caller serves nobody that way. Restrict it to the caller's organisation and role
    yourself. Those who serve a resident by any plugin's relation see them with phone and address in full,
    change them (`updateResident`), and see the referrals sent about them; the account that recorded the
    resident and administrators see the record with its contact masked; everyone else gets NOT_FOUND.
    """


@hookspec
def register_match_criteria() -> list[MatchCriterion]:  # type: ignore[empty-body]
    """Add filters or scores to volunteer matching (e.g. a counseling plugin preferring counselors who
    speak the client's language).

    Called once at startup. Returns `MatchCriterion(name, weight, score)` objects, named
    `<plugin name>.…`; `score(ctx, request, volunteer_ids)` is awaited for each ranking with the
    candidates that passed core's hard filters, and returns a value in [0, 1] per volunteer id or None to
    exclude one. The value joins the explained score as a component with the given weight.
    """


@hookspec
def register_jobs() -> list[Job]:  # type: ignore[empty-body]
    """Schedule periodic work (day-3/7/42 follow-ups, lecture reminders, clean-ups).

    Called when the job runner starts (`yunshegong serve`). Returns `core.Job(name, every, run)` objects
    named `<plugin name>.<what>`; `await run(ctx)` runs for each organisation that enabled the plugin, at
    most once per `every` (at least one second), in a transaction acting for that organisation, and only
    in one process at a time however many serve (the organisation's `job_runs` row is locked with SKIP
    LOCKED). A raised error rolls back that run's work, is logged with the job's name and kept in
    `job_runs.last_error`; the job runs again when next due. Queue messages with `core.notify(...)` and a
    `dedupe_key`, so that a repeated run queues nothing twice.
    """


@hookspec
def register_settings() -> type:  # type: ignore[empty-body]
    """Declare the plugin's settings, read from the environment.

    Called once at startup. Returns a dataclass type whose fields all have defaults and are of type str,
    int, float, bool or timedelta (given in seconds); `YUNSHEGONG_<PLUGIN>_<FIELD>` overrides a default. A
    value that does not convert stops startup with one line naming the plugin and the variable. Services
    read the instance with `core.plugin_settings(ctx, "<plugin>")`.
    """


@hookspec
def register_sealed_columns() -> list[SealedColumn]:  # type: ignore[empty-body]
    """Declare the plugin's sealed columns: text kept encrypted at rest (core.services.sealing).

    Called by `yunshegong reseal` (key rotation). Returns `core.SealedColumn(table, column, id_column="id")`
    objects: a `bytea` column of one of the plugin's tables (`<plugin name>_…`) whose values the plugin
    seals with `core.seal(ctx, text, table=…, column=…, row_id=…)`, bound to that table, column and the
    row's `id_column`. `reseal` rewrites every value of these columns not yet under the current key; a
    column left out keeps its old key and stops opening once that key is dropped. A malformed entry, a
    table outside the plugin's namespace or a column registered twice stops the command naming the plugin.
    """


@hookspec
def register_channels() -> list[Channel]:  # type: ignore[empty-body]
    """Contribute notification delivery channels (an SMS gateway, e-mail, a messaging app).

    Called once when the delivery worker starts (`yunshegong worker`, or inside `serve`). Returns objects
    satisfying `core.Channel`: `name` (the plugin's name or `<plugin name>.<what>`, unique), `accepts(message)`
    (whether to carry a `core.Message`; may return an awaitable; asked once per message, when it is routed)
    and `async send(message)`, which delivers or raises `core.TemporaryFailure` (retried with exponential
    backoff, parked after YUNSHEGONG_DELIVERY_MAX_ATTEMPTS) or `core.PermanentFailure` (parked at once, with
    its message as the reason administrators read). `send` runs outside any transaction, at least once per
    delivery: deduplicate by `message.delivery_id`. A plugin's channel carries messages only of organisations
    that enabled the plugin. A malformed channel or a name outside the plugin's namespace stops startup.
    See docs/notifications.md and examples/channels/.
    """


@hookspec
def register_stats(ctx: ServiceContext) -> Awaitable[list[StatFigure]] | list[StatFigure]:  # type: ignore[empty-body]
    """Contribute figures to the `stats` query and the situation board (`situation { figures }`), e.g. items
    distributed (today).

    Called while `stats` or `situation` is resolved, for plugins enabled for the caller's organisation.
    Receives the service context (`ctx.start_of_today()`: midnight in the caller's time zone). Returns (or
    resolves to) a list of `StatFigure(key, label, value)`.
    """


@hookspec
def register_exports() -> list[ExportDefinition]:  # type: ignore[empty-body]
    """Offer the plugin's lists for download as CSV and XLSX (`GET /export/{name}.csv|.xlsx`).

    Called once when the service starts (and by the `exports` query, cached). Returns
    `core.ExportDefinition(name, label, document, connection, columns, rows=None, variables=(),
    permission=None)` objects, `name` starting with the plugin's name in camelCase (`suppliesStock`), each
    column a `core.ExportColumn(key, header, path, kind)`. An export is a query of the plugin's own public
    GraphQL fields, run page by page as the caller: it sees and masks exactly what the API shows them, and
    is refused (404) to callers whose organisation has not enabled the plugin. A malformed definition, a
    name outside the namespace or a name used twice stops startup naming the plugin.
    """


@hookspec
def register_demo_data(ctx: ServiceContext) -> Awaitable[None] | None:
    """Add the plugin's part of the demo data set.

    Called by `yunshegong demo` / `serve --demo` inside the demo transaction, after core's demo data
    (so communities, volunteers and requests exist), once per database. Returns nothing.
    """


@hookspec
def extend_context(context: Any) -> dict[str, Any] | None:
    """Add per-request state (e.g. the plugin's own DataLoaders) to the GraphQL context.

    Called when each GraphQL request's context is created. Receives the context; returns a dict stored as
    `context.plugin_state["<plugin name>"]`, or None. Keep it cheap: it runs for every request.
    """


# ---------------------------------------------------------------------------------------------------------
# reactions
# ---------------------------------------------------------------------------------------------------------


@hookspec
def on_event(event: DomainEvent, ctx: ServiceContext) -> Awaitable[None] | None:
    """React to a domain event inside the transaction that caused it.

    Called for every event published by core or a plugin (check `event.name` or `isinstance`) in an
    organisation that has enabled this plugin (`event.organization_id`); other organisations' events never
    reach it. Receives
    the event and the service context of the change (same session, same transaction). Raising anything
    rolls the whole change back and the client gets an error naming the plugin; raising `DomainError`
    passes its message on. Returns nothing.
    """
