"""Accounts, sign-in, bearer tokens and API tokens.

- Passwords: argon2id (argon2-cffi's defaults), never stored or logged in clear.
- Bearer tokens: JWT (HS256) with the account id and its token_version; a password change bumps the
  version, so every older token stops working. Expiry: settings.token_ttl_minutes.
- API tokens for partner systems: `ysg_…`, shown once, stored as SHA-256, revocable, one organisation.
- Sign-in failures answer the same whether the user exists or not, and are throttled per username and
  per client address over a window (counted in SQL from login_attempts).
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, literal, select

from core import tenancy
from core.errors import DomainError, Validator
from core.models import Account, ApiToken, AppMeta, Community, LoginAttempt, Organization, Volunteer
from core.services import access, audit, plugin_roles
from core.services import validation as check
from core.services.common import flush, get
from core.services.context import AUTHENTICATOR, ServiceContext, Viewer
from core.vocab import Role

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both cases cost the same time.
_DUMMY_HASH = _hasher.hash("not a real password")
ISSUER = "yunshegong"
API_TOKEN_PREFIX = "ysg_"
MIN_PASSWORD = 10
WRONG_CREDENTIALS = "Wrong username or password."


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _password_rules(v: Validator, field: tuple[str, ...], password: str) -> None:
    if len(password) < MIN_PASSWORD:
        v.add(field, "OUT_OF_RANGE", f"A password has at least {MIN_PASSWORD} characters.")
    elif len(password) > 200:
        v.add(field, "OUT_OF_RANGE", "A password has at most 200 characters.")


async def token_secret(session: Any, configured: str | None) -> str:
    """The signing key: the configured one, else one generated on first use and kept in app_meta."""
    if configured:
        return configured
    stored = await session.scalar(select(AppMeta.value).where(AppMeta.key == "token_secret"))
    if stored:
        return str(stored)
    from sqlalchemy.dialects.postgresql import insert

    await session.execute(
        insert(AppMeta).values(key="token_secret", value=secrets.token_urlsafe(48)).on_conflict_do_nothing()
    )
    await session.commit()
    return str(await session.scalar(select(AppMeta.value).where(AppMeta.key == "token_secret")))


def issue_token(account: Account, secret: str, now: datetime, ttl_minutes: int) -> tuple[str, datetime]:
    expires = now + timedelta(minutes=ttl_minutes)
    claims = {"iss": ISSUER, "sub": str(account.id), "ver": account.token_version, "iat": now, "exp": expires}
    return jwt.encode(claims, secret, algorithm="HS256"), expires


# -- accounts ------------------------------------------------------------------------------------------------


@dataclass
class AccountInput:
    username: str
    display_name: str
    password: str
    role: Role
    organization_id: int | None = None
    community_id: int | None = None
    volunteer_id: int | None = None


async def create_account(ctx: ServiceContext, data: AccountInput) -> Account:
    access.require(ctx, "accounts.manage")
    v = Validator()
    username = check.text(v, ("input", "username"), data.username, max_length=64, label="Username").lower()
    display = check.text(v, ("input", "displayName"), data.display_name, max_length=100, label="Name")
    _password_rules(v, ("input", "password"), data.password)
    role = Role(data.role)
    if role in (Role.SYSTEM, Role.PARTNER):
        v.add(("input", "role"), "INVALID_INPUT", "Accounts cannot have this role.")
    if role == Role.COMMUNITY_HEAD and data.community_id is None:
        v.add(("input", "communityId"), "REQUIRED", "A community head belongs to a community.")
    if role == Role.VOLUNTEER and data.volunteer_id is None:
        v.add(("input", "volunteerId"), "REQUIRED", "A volunteer account belongs to a volunteer record.")
    v.raise_if_any()
    # Organisation administrators create accounts of their own organisation, below their own rank.
    if access.role_of(ctx.viewer) == Role.ORGANIZATION_ADMIN and (
        data.organization_id != ctx.viewer.organization_id or role == Role.PLATFORM_ADMIN
    ):
        raise DomainError("FORBIDDEN", "You may only create accounts of your organisation.", ("input", "role"))
    if data.organization_id is not None:
        await get(ctx, Organization, data.organization_id, what="Organisation", field=("input", "organizationId"))
    # A community or volunteer record of another organisation is invisible (NOT_FOUND); a platform
    # administrator, who sees both, may not bind an account to a record of another organisation.
    for model, record_id, field, what in (
        (Community, data.community_id, ("input", "communityId"), "Community"),
        (Volunteer, data.volunteer_id, ("input", "volunteerId"), "Volunteer"),
    ):
        if record_id is None:
            continue
        record = await get(ctx, model, record_id, what=what, field=field)
        if data.organization_id is not None and record.organization_id != data.organization_id:
            raise DomainError("ORGANIZATION_MISMATCH", f"The {what.lower()} belongs to another organisation.", field)
    # Usernames are global on purpose (sign-in names an account before any organisation is known): the
    # check below sees the caller's organisation, the unique constraint (uq_accounts_username) the rest.
    if await ctx.session.scalar(select(Account.id).where(Account.username == username)) is not None:
        raise DomainError("ALREADY_EXISTS", "This username is taken.", ("input", "username"))
    account = Account(
        username=username,
        display_name=display,
        password_hash=hash_password(data.password),
        role=role.value,
        organization_id=data.organization_id,
        community_id=data.community_id,
        volunteer_id=data.volunteer_id,
    )
    ctx.session.add(account)
    await flush(ctx)
    return account


def viewer_for(account: Account, plugin_permissions: dict[str, frozenset[str]] | None = None) -> Viewer:
    extra = (plugin_permissions or {}).get(account.role, frozenset())
    return Viewer(
        label=account.username,
        account_id=account.id,
        organization_id=account.organization_id,
        role=account.role,
        community_id=account.community_id,
        volunteer_id=account.volunteer_id,
        extra_permissions=extra,
    )


# -- sign-in ---------------------------------------------------------------------------------------------------


@dataclass
class LoginOutcome:
    account: Account | None
    error: DomainError | None


async def login(
    ctx: ServiceContext, username: str, password: str, *, address: str, max_failures: int, window_minutes: int
) -> LoginOutcome:
    """Check credentials and record the attempt. The caller commits either way: failed attempts count."""
    name = (username or "").strip().lower()[:64]
    now = ctx.now()
    since = now - timedelta(minutes=window_minutes)
    failures = await ctx.session.scalar(
        select(func.count()).where(
            LoginAttempt.success.is_(False),
            LoginAttempt.at > since,
            (LoginAttempt.username == name) | (LoginAttempt.address == address),
        )
    )
    outcome: LoginOutcome
    if (failures or 0) >= max_failures:
        _dummy_work(password)
        outcome = LoginOutcome(
            None, DomainError("TOO_MANY_ATTEMPTS", f"Too many failed sign-ins; try again in {window_minutes} minutes.")
        )
    else:
        # Before the caller is known: the authenticator's narrow policy reads accounts by username.
        tenancy.bind(ctx.session, AUTHENTICATOR)
        account = await ctx.session.scalar(select(Account).where(Account.username == name))
        tenancy.bind(ctx.session, ctx.viewer)
        if account is None:
            _dummy_work(password)
        if account is None or not account.is_active or not verify_password(account.password_hash, password):
            outcome = LoginOutcome(None, DomainError("UNAUTHENTICATED", WRONG_CREDENTIALS))
        else:
            outcome = LoginOutcome(account, None)
    ctx.session.add(LoginAttempt(username=name, address=address, success=outcome.error is None, at=now))
    action = "login" if outcome.error is None else "login_failed"
    if outcome.account is not None:
        # Signed in: the entry is the account's, in its organisation's trail (and written as the account).
        ctx = dataclasses.replace(ctx, viewer=viewer_for(outcome.account))
    await audit.append(
        ctx,
        audit.AuditRecord(
            action=action,
            operation="login",
            record_type="Account",
            record_id=outcome.account.id if outcome.account else None,
            detail=f"username={name} address={address}",
        ),
    )
    await ctx.session.flush()
    return outcome


def _dummy_work(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


async def change_password(ctx: ServiceContext, current: str, new: str) -> Account:
    if ctx.viewer.account_id is None:
        raise DomainError("UNAUTHENTICATED", "Sign in first.")
    account = await get(ctx, Account, ctx.viewer.account_id, what="Account", lock=True)
    if not verify_password(account.password_hash, current):
        raise DomainError("UNAUTHENTICATED", "The current password is wrong.", ("input", "currentPassword"))
    v = Validator()
    _password_rules(v, ("input", "newPassword"), new)
    v.check(new != current, ("input", "newPassword"), "INVALID_INPUT", "Choose a new password.")
    v.raise_if_any()
    account.password_hash = hash_password(new)
    account.token_version += 1
    await flush(ctx)
    return account


# -- bearer authentication ---------------------------------------------------------------------------------------


class Unauthenticated(Exception):
    pass


async def authenticate_bearer(
    session: Any,
    token: str,
    secret: str,
    now: datetime,
    plugin_permissions: dict[str, frozenset[str]],
    host: Any = None,
) -> Viewer:
    """The viewer a bearer token stands for, or Unauthenticated (forged, expired, revoked, deactivated).
    With a plugin host that declares roles, the account's granted plugin roles add their permissions (read
    on every request, so a revoked grant stops working at once)."""
    tenancy.bind(session, AUTHENTICATOR)
    if token.startswith(API_TOKEN_PREFIX):
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == _sha256(token)))
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("This API token is not valid.")
        extra = plugin_permissions.get(Role.PARTNER.value, frozenset())
        return Viewer(
            label=f"api:{row.name}",
            organization_id=row.organization_id,
            role=Role.PARTNER.value,
            api_token_id=row.id,
            extra_permissions=extra,
        )
    try:
        # Expiry is checked against the service's clock below (injectable in tests), not the library's.
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["exp", "sub"], "verify_exp": False},
        )
    except jwt.PyJWTError:
        raise Unauthenticated("The token is not valid.") from None
    if float(claims["exp"]) <= now.timestamp():
        raise Unauthenticated("The token has expired; sign in again.")
    with_roles = host is not None and bool(plugin_roles.plugin_roles(host))
    # One statement per request: the account, with its plugin-role grants when any plugin declares roles.
    stmt = select(Account, plugin_roles.granted_roles_column() if with_roles else literal(None))
    found = (await session.execute(stmt.where(Account.id == int(claims["sub"])))).first()
    account, granted_roles = found if found is not None else (None, None)
    if account is None or not account.is_active or account.token_version != claims.get("ver"):
        raise Unauthenticated("The token has been revoked; sign in again.")
    viewer = viewer_for(account, plugin_permissions)
    if with_roles:
        granted = plugin_roles.permissions_of(host, granted_roles or [])
        viewer = dataclasses.replace(viewer, extra_permissions=viewer.extra_permissions | granted)
    return viewer


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- API tokens ----------------------------------------------------------------------------------------------------


async def create_api_token(ctx: ServiceContext, organization_id: int, name: str) -> tuple[str, ApiToken]:
    """A new API token for a partner system of `organization_id`; the plain token is returned only now."""
    access.require(ctx, "tokens.manage")
    _same_org(ctx, organization_id)
    v = Validator()
    clean = check.text(v, ("input", "name"), name, max_length=100, label="Name")
    v.raise_if_any()
    await get(ctx, Organization, organization_id, what="Organisation", field=("input", "organizationId"))
    plain = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        organization_id=organization_id,
        name=clean,
        prefix=plain[:12],
        token_hash=_sha256(plain),
        created_by=ctx.viewer.label,
    )
    ctx.session.add(token)
    await flush(ctx)
    return plain, token


async def revoke_api_token(ctx: ServiceContext, token_id: int) -> ApiToken:
    access.require(ctx, "tokens.manage")
    token = await get(ctx, ApiToken, token_id, what="API token", lock=True)
    _same_org(ctx, token.organization_id)
    if token.revoked_at is None:
        token.revoked_at = ctx.now()
        await flush(ctx)
    return token


async def list_api_tokens(ctx: ServiceContext) -> list[ApiToken]:
    access.require(ctx, "tokens.manage")
    stmt = select(ApiToken).order_by(ApiToken.id)
    if access.role_of(ctx.viewer) != Role.PLATFORM_ADMIN:
        stmt = stmt.where(ApiToken.organization_id == ctx.viewer.organization_id)
    return list((await ctx.session.scalars(stmt)).all())


def _same_org(ctx: ServiceContext, organization_id: int) -> None:
    if access.role_of(ctx.viewer) not in (Role.PLATFORM_ADMIN, Role.SYSTEM) and (
        organization_id != ctx.viewer.organization_id
    ):
        raise DomainError("FORBIDDEN", "Only your own organisation.", ("input", "organizationId"))


async def get_account(ctx: ServiceContext, account_id: int) -> Account:
    return await get(ctx, Account, account_id, what="Account")
