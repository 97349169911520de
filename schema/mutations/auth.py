"""Sign-in, passwords, accounts and API tokens."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import strawberry
from strawberry import Info

from core import vocab
from core.errors import DomainError
from core.services import auth, passwords
from core.services.context import ServiceContext
from core.settings import Network, trusted_networks
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
    retry_after: int | None = strawberry.field(
        default=None,
        description="With TOO_MANY_ATTEMPTS or BUSY: whole seconds to wait before trying again.",
    )


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


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51234"
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client reaching an IPv6 socket shows as ::ffff:a.b.c.d: one client, one address.
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped if mapped is not None else ip


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """Who is signing in. The peer address, unless the peer is a trusted proxy: then X-Forwarded-For is
    read from the right (each proxy appends the address it received the request from) and the first hop
    that is not a trusted proxy is the client. Hops left of it are whatever the client chose to send.
    Without trusted proxies (the default) the header is ignored: anyone can write it."""
    peer_ip = _ip(peer) if peer else None
    if peer_ip is None:
        return (peer or "unknown")[:64]

    def is_trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip.version == net.version and ip in net for net in trusted)

    client = peer_ip
    if is_trusted(peer_ip):
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                # Not an address: nothing further left can be believed; the last trusted hop answers.
                break
            client = ip
            if not is_trusted(ip):
                break
    return client.compressed


def _client_address(info: Info) -> str:
    request = info.context.request
    peer = getattr(getattr(request, "client", None), "host", None)
    forwarded = request.headers.getlist("x-forwarded-for") if request is not None else []
    return client_address(peer, forwarded, trusted_networks(tuple(info.context.settings.trusted_proxies)))


async def _token_for(info: Info, account: Any) -> tuple[str, datetime]:
    settings = info.context.settings
    secret = await info.context.app.token_secret()
    return auth.issue_token(account, secret, info.context.app.clock(), settings.token_ttl_minutes)


@strawberry.type
class AuthMutations:
    @strawberry.mutation(description="Sign in. Same answer for an unknown user and a wrong password.")
    async def login(self, info: Info, input: LoginInput) -> LoginPayload:
        info.context.operation_name = "login"
        outcome = await auth.login(
            info.context.record_attempt,
            input.username,
            input.password,
            address=_client_address(info),
            policy=auth.LoginPolicy.from_settings(info.context.settings),
        )
        if outcome.error is not None:
            return LoginPayload(errors=to_user_errors(outcome.error), retry_after=outcome.retry_after)
        token, expires = await _token_for(info, outcome.account)
        return LoginPayload(token=token, expires_at=expires, account=Account.from_model(outcome.account))

    @strawberry.mutation(description="Change your password; tokens issued before stop working. Returns a new one.")
    async def change_password(self, info: Info, input: ChangePasswordInput) -> LoginPayload:
        info.context.operation_name = "changePassword"
        try:
            account = await info.context.write(auth.change_password, input.current_password, input.new_password)
        except DomainError as exc:
            retry_after = exc.retry_after if isinstance(exc, passwords.Busy) else None
            return LoginPayload(errors=to_user_errors(exc), retry_after=retry_after)
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
