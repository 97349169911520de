"""Per-organisation plugin enablement: installed ≠ enabled.

Checked here, in the service layer: the schema builder gates every plugin root field and plugin node
type with `ensure_enabled`, so no resolver can forget it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from core.errors import DomainError
from core.i18n import _
from core.models import Organization, PluginEnablement
from core.services import access
from core.services.common import get
from core.services.context import ServiceContext
from core.vocab import Role

_MEMO_KEY = "plugins.enabled"


async def enabled_plugins(ctx: ServiceContext) -> frozenset[str]:
    """Plugins enabled for the viewer's organisation (read once per request)."""
    return await enabled_for(ctx, ctx.viewer.organization_id)


async def enabled_for(ctx: ServiceContext, organization_id: int | None) -> frozenset[str]:
    """Plugins enabled for `organization_id` (read once per request and organisation)."""
    key = (_MEMO_KEY, organization_id)
    cached = ctx.memo.get(key)  # type: ignore[call-overload]
    if cached is not None:
        return cached
    names: frozenset[str] = frozenset()
    if organization_id is not None:
        rows = await ctx.session.scalars(
            select(PluginEnablement.plugin_name).where(
                PluginEnablement.organization_id == organization_id, PluginEnablement.enabled.is_(True)
            )
        )
        names = frozenset(rows.all())
    ctx.memo[key] = names  # type: ignore[index]
    return names


async def is_enabled(ctx: ServiceContext, plugin: str) -> bool:
    """Whether the caller's organisation has enabled `plugin` (part of the plugin API: `core.is_enabled`)."""
    return plugin in await enabled_plugins(ctx)


async def ensure_enabled(ctx: ServiceContext, plugin: str) -> None:
    """PLUGIN_DISABLED unless the caller's organisation enabled `plugin`; UNAUTHENTICATED first for an
    anonymous caller (who has no organisation, so "not enabled for you" would be the wrong answer)."""
    access.require_signed_in(ctx)
    if plugin not in await enabled_plugins(ctx):
        raise DomainError(
            "PLUGIN_DISABLED", "The {plugin} plugin is not enabled for your organisation.", (plugin,), plugin=plugin
        )


async def set_enabled(
    ctx: ServiceContext,
    *,
    organization_id: int,
    plugin: str,
    enabled: bool,
    installed: frozenset[str],
    known: frozenset[str],
) -> bool:
    """Enable or disable `plugin` for an organisation. Takes effect for the next request; keeps all data.
    Returns the organisation's new state."""
    access.require(ctx, "plugins.manage")
    if access.role_of(ctx.viewer) == Role.ORGANIZATION_ADMIN and organization_id != ctx.viewer.organization_id:
        raise DomainError("FORBIDDEN", "Only for your own organisation.", ("input", "organizationId"))
    if plugin not in installed:
        if plugin in known:
            raise DomainError(
                "PLUGIN_NOT_INSTALLED",
                "The {plugin} plugin is not loaded in this deployment.",
                ("input", "plugin"),
                plugin=plugin,
            )
        raise DomainError(
            "UNKNOWN_PLUGIN", "There is no plugin called {plugin}.", ("input", "plugin"), plugin=repr(plugin)
        )
    await get(ctx, Organization, organization_id, what=_("Organisation"), field=("input", "organizationId"))
    stmt = insert(PluginEnablement).values(
        organization_id=organization_id, plugin_name=plugin, enabled=enabled, changed_by=ctx.viewer.label
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[PluginEnablement.organization_id, PluginEnablement.plugin_name],
        set_={"enabled": enabled, "changed_by": ctx.viewer.label, "updated_at": ctx.now()},
    )
    await ctx.session.execute(stmt)
    ctx.memo.pop((_MEMO_KEY, organization_id), None)  # type: ignore[call-overload]
    return plugin in await enabled_for(ctx, organization_id)
