"""Sign-in, passwords, accounts and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import Info

from core import vocab
from core.errors import DomainError
from core.services import auth
from core.services.context import ServiceContext
from schema import ids
from schema.errors import UserError, to_user_errors
from schema.mutations.base import mutate, payload
from schema.types.account import Account, ApiToken, Role

AccountPayload = payload("AccountPayload", "account", Account)
RevokeApiTokenPayload = payload("RevokeApiTokenPayload", "api_token", ApiToken)


@strawberry.type(description="A bearer token for the Authorization header, and when it expires.")
class LoginPayload:
    token: str | None = None
    expires_at: datetime | None = None
    account: Account | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="The new token is shown only in this answer; store it now.")
class CreateApiTokenPayload:
    token: str | None = None
    api_token: ApiToken | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class LoginInput:
    username: str
    password: str


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class CreateAccountInput:
    username: str
    display_name: str
    password: str
    role: Role  # type: ignore[valid-type]
    organization_id: strawberry.ID | None = None
    community_id: strawberry.ID | None = None
    volunteer_id: strawberry.ID | None = None


@strawberry.input
class CreateApiTokenInput:
    organization_id: strawberry.ID
    name: str


@strawberry.input
class RevokeApiTokenInput:
    id: strawberry.ID


def _client_address(info: Info) -> str:
    request = info.context.request
    client = getattr(request, "client", None)
    return client.host if client else "unknown"


async def _token_for(info: Info, account: Any) -> tuple[str, datetime]:
    settings = info.context.settings
    secret = await info.context.app.token_secret()
    return auth.issue_token(account, secret, info.context.app.clock(), settings.token_ttl_minutes)


@strawberry.type
class AuthMutations:
    @strawberry.mutation(description="Sign in. Same answer for an unknown user and a wrong password.")
    async def login(self, info: Info, input: LoginInput) -> LoginPayload:
        settings = info.context.settings
        info.context.operation_name = "login"
        outcome = await info.context.record_attempt(
            auth.login,
            input.username,
            input.password,
            address=_client_address(info),
            max_failures=settings.login_max_failures,
            window_minutes=settings.login_window_minutes,
        )
        if outcome.error is not None:
            return LoginPayload(errors=to_user_errors(outcome.error))
        token, expires = await _token_for(info, outcome.account)
        return LoginPayload(token=token, expires_at=expires, account=Account.from_model(outcome.account))

    @strawberry.mutation(description="Change your password; tokens issued before stop working. Returns a new one.")
    async def change_password(self, info: Info, input: ChangePasswordInput) -> LoginPayload:
        info.context.operation_name = "changePassword"
        try:
            account = await info.context.write(auth.change_password, input.current_password, input.new_password)
        except DomainError as exc:
            return LoginPayload(errors=to_user_errors(exc))
        token, expires = await _token_for(info, account)
        return LoginPayload(token=token, expires_at=expires, account=Account.from_model(account))

    @strawberry.mutation(description="Create an account (administrators; organisation admins for their own).")
    async def create_account(self, info: Info, input: CreateAccountInput) -> AccountPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await auth.create_account(
                ctx,
                auth.AccountInput(
                    username=input.username,
                    display_name=input.display_name,
                    password=input.password,
                    role=vocab.Role(input.role.value),
                    organization_id=ids.decode_optional(
                        input.organization_id, "Organization", ("input", "organizationId")
                    ),
                    community_id=ids.decode_optional(input.community_id, "Community", ("input", "communityId")),
                    volunteer_id=ids.decode_optional(input.volunteer_id, "Volunteer", ("input", "volunteerId")),
                ),
            )

        return await mutate(info, AccountPayload, "account", Account.from_model, work)

    @strawberry.mutation(description="A new API token for a partner system of one organisation.")
    async def create_api_token(self, info: Info, input: CreateApiTokenInput) -> CreateApiTokenPayload:
        holder: dict[str, str] = {}

        async def work(ctx: ServiceContext) -> Any:
            org = ids.decode(input.organization_id, "Organization", ("input", "organizationId"))
            plain, token = await auth.create_api_token(ctx, org, input.name)
            holder["plain"] = plain
            return token

        result = await mutate(info, RevokeApiTokenPayload, "api_token", ApiToken.from_model, work)
        return CreateApiTokenPayload(
            token=holder.get("plain") if not result.errors else None, api_token=result.api_token, errors=result.errors
        )

    @strawberry.mutation
    async def revoke_api_token(self, info: Info, input: RevokeApiTokenInput) -> RevokeApiTokenPayload:
        return await mutate(
            info,
            RevokeApiTokenPayload,
            "api_token",
            ApiToken.from_model,
            lambda ctx: auth.revoke_api_token(ctx, ids.decode(input.id, "ApiToken", ("input", "id"))),
        )
