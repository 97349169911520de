"""Plugin roles and per-account grants (hook `register_roles`).

A plugin declares roles that carry some of its own permissions (`case_work.supervisor` → approve closures,
read the team's cases); an organisation's administrator grants them to accounts of that organisation, on
top of the account's core role. A caller holds the permissions of their grants from the next request on
(grants are read when the bearer token is checked, so a revoked grant stops working at once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from core.errors import DomainError
from core.i18n import _
from core.models import Account, AccountPluginRole
from core.services import access
from core.services.common import get
from core.services.context import ServiceContext
from core.services.plugins import enabled_for

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]{0,38}$")


@dataclass(frozen=True)
class PluginRole:
    """A role a plugin declares: `name` is `<plugin>.<role>`; `permissions` are names of the plugin's own
    permissions (register_permissions) that an account granted the role holds."""

    name: str
    description: str
    permissions: tuple[str, ...]


class PluginRoleError(ValueError):
    """A plugin declared a malformed role (startup stops with this message)."""


def plugin_roles(host: Any) -> dict[str, PluginRole]:
    """Every role the loaded plugins declare, validated (cached on the host: it is fixed per process)."""
    if host is None or not hasattr(host, "call_each"):
        return {}
    cached = getattr(host, "_plugin_roles", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    declared = {p.name for p in getattr(host, "permissions", ())}
    roles: dict[str, PluginRole] = {}
    for plugin, value in host.call_each("register_roles"):
        if not isinstance(value, (list, tuple)) or not all(isinstance(r, PluginRole) for r in value):
            raise PluginRoleError(f"plugin {plugin.name!r}: register_roles must return a list of core.PluginRole")
        for role in value:
            if not ROLE_NAME.match(role.name) or not role.name.startswith(f"{plugin.name}."):
                raise PluginRoleError(f"plugin {plugin.name!r}: role {role.name!r} must be '{plugin.name}.<role>'")
            if role.name in roles:
                raise PluginRoleError(f"plugin {plugin.name!r}: role {role.name!r} is declared twice")
            foreign = [p for p in role.permissions if not p.startswith(f"{plugin.name}.") or p not in declared]
            if foreign:
                raise PluginRoleError(
                    f"plugin {plugin.name!r}: role {role.name!r} names permissions it does not declare: {foreign}"
                )
            roles[role.name] = role
    host._plugin_roles = roles
    return roles


def permissions_of(host: Any, granted: Iterable[str]) -> frozenset[str]:
    """The permissions an account with these granted roles holds through them (unknown roles: none, e.g.
    the roles of a plugin that is no longer installed)."""
    roles = plugin_roles(host)
    return frozenset(p for name in granted if name in roles for p in roles[name].permissions)


async def _target(ctx: ServiceContext, account_id: int, role: str) -> Account:
    access.require(ctx, "accounts.manage")
    if role not in plugin_roles(ctx.events):
        raise DomainError("INVALID_INPUT", "No installed plugin declares this role.", ("input", "role"))
    # Another organisation's account is not there at all (row-level security): NOT_FOUND, like a missing one.
    account = await get(ctx, Account, account_id, what=_("Account"), field=("input", "accountId"), lock=True)
    if account.organization_id is None:
        raise DomainError(
            "INVALID_INPUT", "Platform administrators hold every plugin permission already.", ("input", "accountId")
        )
    return account


async def grant(ctx: ServiceContext, account_id: int, role: str) -> Account:
    """Grant `role` to an account of the caller's organisation (platform administrators: any organisation's)
    whose organisation enabled the role's plugin. Granting a role held already changes nothing."""
    account = await _target(ctx, account_id, role)
    plugin = role.split(".", 1)[0]
    if plugin not in await enabled_for(ctx, account.organization_id):
        raise DomainError(
            "PLUGIN_DISABLED",
            "The {plugin} plugin is not enabled for this organisation.",
            ("input", "role"),
            plugin=plugin,
        )
    await ctx.session.execute(
        insert(AccountPluginRole)
        .values(account_id=account.id, role=role, organization_id=account.organization_id, granted_by=ctx.viewer.label)
        .on_conflict_do_nothing()
    )
    return account


async def revoke(ctx: ServiceContext, account_id: int, role: str) -> Account:
    """Take `role` away; revoking a role not held changes nothing."""
    account = await _target(ctx, account_id, role)
    await ctx.session.execute(
        delete(AccountPluginRole).where(AccountPluginRole.account_id == account.id, AccountPluginRole.role == role)
    )
    return account


async def roles_of(ctx: ServiceContext, account_ids: Sequence[int]) -> dict[int, list[str]]:
    """Granted roles by account, for the accounts the caller may see (one query)."""
    access.require(ctx, "accounts.manage")
    rows = await ctx.session.execute(
        select(AccountPluginRole.account_id, AccountPluginRole.role)
        .where(AccountPluginRole.account_id.in_(list(account_ids)))
        .order_by(AccountPluginRole.account_id, AccountPluginRole.role)
    )
    out: dict[int, list[str]] = {pk: [] for pk in account_ids}
    for account_id, role in rows:
        out[account_id].append(role)
    return out
