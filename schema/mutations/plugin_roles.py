"""Granting plugin roles to accounts (core.services.plugin_roles) as GraphQL."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import Info

from core.services import plugin_roles
from core.services.context import ServiceContext
from schema import ids
from schema.mutations.auth import AccountPayload
from schema.mutations.base import mutate
from schema.types.account import Account


@strawberry.input(description="A plugin role (see `pluginRoles`) for an account of your organisation.")
class PluginRoleGrantInput:
    account_id: strawberry.ID
    role: str = strawberry.field(description='The role\'s name, e.g. "case_work.supervisor".')


@strawberry.type(description="A role a plugin declares; granting it gives an account the listed permissions.")
class PluginRoleInfo:
    name: str
    description: str
    permissions: list[str]


@strawberry.type
class PluginRoleMutations:
    @strawberry.mutation(description="Grant a plugin role (organisation administrators, for their accounts).")
    async def grant_plugin_role(self, info: Info, input: PluginRoleGrantInput) -> AccountPayload:
        async def work(ctx: ServiceContext) -> Any:
            pk = ids.decode(input.account_id, "Account", ("input", "accountId"))
            return await plugin_roles.grant(ctx, pk, input.role)

        return await mutate(info, AccountPayload, "account", Account.from_model, work)

    @strawberry.mutation(description="Take a plugin role away; it stops working with the account's next request.")
    async def revoke_plugin_role(self, info: Info, input: PluginRoleGrantInput) -> AccountPayload:
        async def work(ctx: ServiceContext) -> Any:
            pk = ids.decode(input.account_id, "Account", ("input", "accountId"))
            return await plugin_roles.revoke(ctx, pk, input.role)

        return await mutate(info, AccountPayload, "account", Account.from_model, work)


def role_infos(host: Any) -> list[PluginRoleInfo]:
    return [
        PluginRoleInfo(name=r.name, description=r.description, permissions=list(r.permissions))
        for r in plugin_roles.plugin_roles(host).values()
    ]
