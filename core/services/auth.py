"""Accounts, sign-in, bearer tokens and API tokens.

- Passwords: argon2id (argon2-cffi's defaults), never stored or logged in clear; hashed and verified in
  worker threads, a few at a time (core.services.passwords), never on the event loop.
- Bearer tokens: JWT (HS256) with the account id and its token_version; a password change bumps the
  version, so every older token stops working. Expiry: settings.token_ttl_minutes. Claims are checked
  strictly (types and ranges): a token signed with the right key but odd claims is refused, not a crash.
- API tokens for partner systems: `ysg_…`, shown once, stored as SHA-256, revocable, one organisation.
- Sign-in failures answer the same whether the user exists or not. Repeated failures are slowed by an
  exponentially growing delay (1 s, doubling per further failure, capped at login_max_delay_seconds;
  see `login`), counted over login_window_minutes. Three counts, each with its own limit:
  * the (username, network) pair: login_max_failures, reset by a success from that network;
  * the network, whatever the usernames (a password spray): ADDRESS_FACTOR × login_max_failures (an
    account at a network it signed in from within KNOWN_NETWORK_DAYS is exempt from this count);
  * the username, whatever the networks (a botnet, or one IPv6 prefix with endless addresses):
    USERNAME_FACTOR × login_max_failures, not reset by a success. A network this account signed in
    from within the last KNOWN_NETWORK_DAYS days is exempt from this one count, so an attacker
    elsewhere can slow the owner only where the owner has never (or not lately) signed in; at home
    the owner is never slowed by anyone else.
  A "network" is the client's IPv4 address, or the /64 of an IPv6 address (one subscriber's prefix:
  every home and phone connection gets a whole /64, so counting single IPv6 addresses would give an
  attacker fresh attempts for free); an IPv4-mapped IPv6 address counts as its IPv4 address. The
  login_attempts table records that network (the throttle key); the audit trail records the exact
  client address.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import ipaddress
import math
import re
import secrets
import unicodedata
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, column, delete, func, select, text, update

from core import tenancy
from core.errors import DomainError, Validator
from core.i18n import _
from core.models import Account, ApiToken, AppMeta, Community, LoginAttempt, Organization, Volunteer
from core.services import access, audit, passwords, plugin_roles
from core.services import validation as check
from core.services.common import flush, get
from core.services.context import AUTHENTICATOR, ServiceContext, Viewer
from core.tenancy.session import adopt
from core.vocab import Role

if TYPE_CHECKING:
    from core.settings import Settings

T = TypeVar("T")

# Read at every call (not bound at import): tests swap in cheap parameters, and the hashes stay real.
_hasher = PasswordHasher()
ISSUER = "yunshegong"
API_TOKEN_PREFIX = "ysg_"
MIN_PASSWORD = 10
WRONG_CREDENTIALS = _("Wrong username or password.")


# -- passwords (the functions without a leading underscore run off the event loop) ------------------------------


def _hash(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError, UnicodeError):
        # A lone surrogate cannot be encoded, so it cannot be anyone's password.
        return False


_dummy: tuple[PasswordHasher, str] | None = None


def _dummy_hash() -> str:
    """A hash made with the current parameters, verified against when there is no account to check, so
    an unknown user costs the same time as a wrong password."""
    global _dummy
    if _dummy is None or _dummy[0] is not _hasher:
        _dummy = (_hasher, _hasher.hash("not a real password"))
    return _dummy[1]


def _verify_or_pretend(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        _verify(_dummy_hash(), password)
        return False
    return _verify(password_hash, password)


async def hash_password(password: str) -> str:
    """An argon2id hash, computed in a worker thread (BUSY when every hashing slot stays taken)."""
    return await passwords.run(_hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches, checked in a worker thread (BUSY when every hashing slot stays taken)."""
    return await passwords.run(_verify, password_hash, password)


def _password_rules(v: Validator, field: tuple[str, ...], password: str) -> None:
    if len(password) < MIN_PASSWORD:
        v.add(field, "OUT_OF_RANGE", "A password has at least {minimum} characters.", minimum=MIN_PASSWORD)
    elif len(password) > 200:
        v.add(field, "OUT_OF_RANGE", "A password has at most 200 characters.")
    elif not _encodable(password):
        v.add(field, "INVALID_INPUT", "A password must be valid text (no lone surrogates).")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    username = canonical_username(
        check.text(v, ("input", "username"), data.username, max_length=64, label=_("Username"))
    )
    if username and not all(_username_character(ch) for ch in username):
        v.add(
            ("input", "username"),
            "INVALID_INPUT",
            "A username holds letters, digits and . _ - @ + only (no spaces, no invisible characters).",
        )
    display = check.text(v, ("input", "displayName"), data.display_name, max_length=100, label=_("Name"))
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
        await get(ctx, Organization, data.organization_id, what=_("Organisation"), field=("input", "organizationId"))
    # A community or volunteer record of another organisation is invisible (NOT_FOUND); a platform
    # administrator, who sees both, may not bind an account to a record of another organisation.
    for model, record_id, field, what, elsewhere in (
        (
            Community,
            data.community_id,
            ("input", "communityId"),
            _("Community"),
            _("The community belongs to another organisation."),
        ),
        (
            Volunteer,
            data.volunteer_id,
            ("input", "volunteerId"),
            _("Volunteer"),
            _("The volunteer belongs to another organisation."),
        ),
    ):
        if record_id is None:
            continue
        record = await get(ctx, model, record_id, what=what, field=field)
        if data.organization_id is not None and record.organization_id != data.organization_id:
            raise DomainError("ORGANIZATION_MISMATCH", elsewhere, field)
    # Usernames are global on purpose (sign-in names an account before any organisation is known): the
    # check below sees the caller's organisation, the unique constraint (uq_accounts_username) the rest.
    if await ctx.session.scalar(select(Account.id).where(Account.username == username)) is not None:
        raise DomainError("ALREADY_EXISTS", "This username is taken.", ("input", "username"))
    account = Account(
        username=username,
        display_name=display,
        password_hash=await hash_password(data.password),
        role=role.value,
        organization_id=data.organization_id,
        community_id=data.community_id,
        volunteer_id=data.volunteer_id,
    )
    ctx.session.add(account)
    await flush(ctx)
    return account


def canonical_username(raw: str) -> str:
    """One spelling per username, at sign-up and sign-in alike: compatibility-normalised (full-width ａｄｍｉｎ
    is admin, a composed é and e + U+0301 are one é) and lower-cased, the width and case mapping of
    RFC 8265's usernames. Two look-alike spellings are one account, never two."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw.strip()).lower())


_USERNAME_PUNCTUATION = frozenset("._-@+")


def _username_character(ch: str) -> bool:
    # Letters (with their combining marks) and digits of any script, and the punctuation of e-mail-like
    # names; never spaces, controls or format characters (a zero-width space makes a look-alike of admin).
    return ch in _USERNAME_PUNCTUATION or unicodedata.category(ch)[0] in "LMN"


def viewer_for(account: Any, plugin_permissions: dict[str, frozenset[str]] | None = None) -> Viewer:
    """The viewer of `account` (an Account, or a row with its columns: the bearer check's)."""
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

# Advisory-lock namespaces of sign-in (the two-key form: their key spaces are apart from single-key locks
# and from each other, so a network's lock never collides with a username's, see `admit_login`).
_LOGIN_LOCK_CLASS = 0x5953_4C47
_LOGIN_USERNAME_LOCK_CLASS = 0x5953_4C55
# The per-network limit is this many times the per-(username, network) one: an office behind one NAT
# mistypes several passwords a day, a password spray tries hundreds of usernames.
ADDRESS_FACTOR = 10
# The per-username limit (across all networks) is this many times the per-pair one: an owner mistyping
# on a few devices stays far below it, a distributed guessing run against one account reaches it soon.
USERNAME_FACTOR = 10
# A network the account signed in from within this many days is the owner's usual place: exempt from
# the per-username limit, so an attack from elsewhere cannot slow the owner there.
KNOWN_NETWORK_DAYS = 30
# The prefix length one IPv6 subscriber gets at the least (RFC 6177: a /64 for every site or device).
_IPV6_SUBSCRIBER_PREFIX = 64
# No delay grows beyond 2**_MAX_EXPONENT seconds before the cap applies (keeps the float finite).
_MAX_EXPONENT = 32


@dataclass(frozen=True)
class LoginPolicy:
    """How sign-in slows down repeated failures (from settings; see `login`)."""

    max_failures: int = 5
    window_minutes: int = 15
    max_delay_seconds: float = 30.0
    address_max_failures: int = 5 * ADDRESS_FACTOR
    username_max_failures: int = 5 * USERNAME_FACTOR
    known_network_days: int = KNOWN_NETWORK_DAYS

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        return cls(
            max_failures=settings.login_max_failures,
            window_minutes=settings.login_window_minutes,
            max_delay_seconds=settings.login_max_delay_seconds,
            address_max_failures=settings.login_max_failures * ADDRESS_FACTOR,
            username_max_failures=settings.login_max_failures * USERNAME_FACTOR,
        )

    def wait(self, failures: int, limit: int, last: datetime | None, now: datetime) -> float:
        """Seconds until the next attempt may be checked: none below `limit` failures, then 1 s after the
        last failure, doubling with each further failure, never more than max_delay_seconds."""
        if failures < limit or last is None:
            return 0.0
        delay = min(self.max_delay_seconds, 2.0 ** min(failures - limit, _MAX_EXPONENT))
        return max(0.0, (last - now).total_seconds() + delay)


@dataclass
class LoginOutcome:
    account: Account | None
    error: DomainError | None
    # Whole seconds to wait before trying again (TOO_MANY_ATTEMPTS, BUSY).
    retry_after: int | None = None


@dataclass(frozen=True)
class LoginTicket:
    """An attempt admitted by the throttle, already recorded as a failure until its password checks out."""

    username: str
    # The exact client address (for the audit trail) and the network the throttle counts it under.
    address: str
    network: str
    attempt_id: int
    account_id: int | None
    # None: no active account of that name (a dummy hash is verified instead, for equal timing).
    password_hash: str | None


class Transact(Protocol):
    """Runs `fn` in a transaction of its own and commits whatever it recorded, returned or raised
    (the GraphQL context's `record_attempt`)."""

    def __call__(self, fn: Callable[[ServiceContext], Awaitable[T]], /) -> Awaitable[T]: ...


@dataclass
class _Turn:
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    users: int = 0


class _Turns:
    """One sign-in at a time per (username, network) in this process; the others wait their turn.

    Admission counts attempts still being checked as failures (it cannot know yet), so without turns
    six honest sign-ins of one account at once would see five "failures" and the sixth would be told to
    wait. Taking turns, each sees the settled outcome of the one before (a success resets the pair).
    The database count stays the guarantee across processes; this only keeps it from refusing honest
    parallel attempts. A turn not come within `wait` seconds answers TOO_MANY_ATTEMPTS (1 s): a flood
    for one pair queues only for that long."""

    def __init__(self) -> None:
        # Per event loop, like every asyncio primitive (tests run one loop per test).
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], _Turn]] = (
            weakref.WeakKeyDictionary()
        )

    @contextlib.asynccontextmanager
    async def turn(self, key: tuple[str, str], wait: float) -> AsyncIterator[bool]:
        """Yields True once it is this caller's turn, False if the wait ran out."""
        turns = self._locks.setdefault(asyncio.get_running_loop(), {})
        entry = turns.get(key)
        if entry is None:
            entry = turns[key] = _Turn()
        entry.users += 1
        try:
            try:
                async with asyncio.timeout(wait):
                    await entry.lock.acquire()
            except TimeoutError:
                yield False
                return
            try:
                yield True
            finally:
                entry.lock.release()
        finally:
            entry.users -= 1
            if entry.users == 0:
                turns.pop(key, None)


_turns = _Turns()


async def login(transact: Transact, username: str, password: str, *, address: str, policy: LoginPolicy) -> LoginOutcome:
    """Check credentials, throttling repeated failures. Three short transactions, none open while the
    password is checked (a 0.3 s hash must not hold a connection or a lock):

    1. Admission, serialized per client network and per username by transaction-level advisory locks:
       count the recent failures of this (username, network) pair (since its last success), of the
       network, and of the username from anywhere (unless the account signed in from this network
       lately), refuse at once with TOO_MANY_ATTEMPTS and the seconds to wait while a delay runs, else
       record the attempt *as a failure* before the password is checked. Parallel attempts therefore
       see each other: 40 at once verify at most `max_failures` passwords, and no count is read before
       the attempts it should include commit.
    2. The password check, in a worker thread (BUSY, and the attempt withdrawn, when no slot frees).
    3. Settlement: a right password turns the recorded failure into a success (which resets the pair)
       and signs the account in; the audit trail gets the outcome either way.

    Attempts of one pair take turns in this process (see `_Turns`). The owner at a network they signed
    in from lately is never slowed by an attacker elsewhere. Refused attempts are audited but do not
    count, so a client retrying too early does not lengthen its delay."""
    name, _address, network = _login_key(username, address)
    key = (name, network)
    async with _turns.turn(key, passwords.current().wait_seconds) as my_turn:
        if not my_turn:
            # Not a refusal for failures (nothing was checked or counted): this process is busy with the pair.
            error = DomainError("BUSY", "Another sign-in to this account is under way; retry shortly.")
            return LoginOutcome(None, error, 1)
        admitted = await transact(lambda ctx: admit_login(ctx, username, address=address, policy=policy))
        if isinstance(admitted, LoginOutcome):
            return admitted
        ticket = admitted
        try:
            verified = await passwords.run(_verify_or_pretend, ticket.password_hash, password)
        except passwords.Busy as busy:
            # Not a guess that was checked: it must not count towards anyone's delay.
            await transact(lambda ctx: _withdraw(ctx, ticket))
            return LoginOutcome(None, busy, busy.retry_after)
        return await transact(lambda ctx: _settle(ctx, ticket, verified))


def _login_key(username: str, address: str) -> tuple[str, str, str]:
    """The username, the exact address and its network as recorded: case-insensitive, storable, within
    the columns."""
    name = _storable(canonical_username(username or ""))[:64]
    exact = _storable(address)[:64] or "unknown"
    return name, exact, throttle_network(exact)


def throttle_network(address: str) -> str:
    """The network the throttle counts `address` under: an IPv4 address itself (also when written as
    IPv4-mapped IPv6), the /64 of an IPv6 address ("2001:db8:1:2::/64"), anything else (a test client,
    a unix socket) as it is."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # By the integer: drops a zone index ("fe80::1%eth0") with the host bits.
        host_bits = 128 - _IPV6_SUBSCRIBER_PREFIX
        return ipaddress.IPv6Network((int(ip) >> host_bits << host_bits, _IPV6_SUBSCRIBER_PREFIX)).compressed
    return str(ip)


async def admit_login(
    ctx: ServiceContext, username: str, *, address: str, policy: LoginPolicy
) -> LoginTicket | LoginOutcome:
    """Step 1 of `login`: a ticket to check the password (the attempt recorded as a failure), or the
    refusal (TOO_MANY_ATTEMPTS with the seconds to wait). The caller commits either way."""
    name, address, network = _login_key(username, address)
    session = ctx.session
    # Held to the end of this short transaction: admissions from one network happen one at a time, and
    # so do admissions for one username, so each sees every attempt admitted before it (those are
    # committed by the time it gets the locks). Always the network's lock first, then the username's,
    # in separate key spaces: no two admissions can wait for each other in a cycle.
    await session.execute(select(func.pg_advisory_xact_lock(_LOGIN_LOCK_CLASS, func.hashtext(network))))
    await session.execute(select(func.pg_advisory_xact_lock(_LOGIN_USERNAME_LOCK_CLASS, func.hashtext(name))))
    now = ctx.now()
    since = now - timedelta(minutes=policy.window_minutes)
    # By id, not time: admissions from one network are serialized, so ids are in admission order even
    # when two attempts share a timestamp.
    last_success = (
        select(func.max(LoginAttempt.id))
        .where(
            LoginAttempt.address == network,
            LoginAttempt.username == name,
            LoginAttempt.success.is_(True),
            LoginAttempt.at > since,
        )
        .scalar_subquery()
    )
    pair_failure = and_(
        LoginAttempt.username == name,
        LoginAttempt.success.is_(False),
        LoginAttempt.id > func.coalesce(last_success, 0),
    )
    failed = LoginAttempt.success.is_(False)
    counts = (
        await session.execute(
            select(
                func.count().filter(pair_failure),
                func.max(LoginAttempt.at).filter(pair_failure),
                func.count().filter(failed),
                func.max(LoginAttempt.at).filter(failed),
            ).where(LoginAttempt.address == network, LoginAttempt.at > since)
        )
    ).one()
    pair_failures, pair_last, address_failures, address_last = counts
    wait = policy.wait(pair_failures, policy.max_failures, pair_last, now)
    spray_wait = policy.wait(address_failures, policy.address_max_failures, address_last, now)
    if wait <= 0 and spray_wait > 0 and not await _known_network(ctx, name, network, policy, now):
        # A spray from this network slows every username here, except the account at its usual place: an
        # office NAT full of someone else's failures must not keep its own staff out.
        wait = spray_wait
    if wait <= 0:
        wait = await _username_wait(ctx, name, network, policy, since, now)
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        await _audit_attempt(ctx, None, name, address, "throttled")
        error = DomainError(
            "TOO_MANY_ATTEMPTS", "Too many failed sign-ins; try again in {seconds} seconds.", seconds=retry_after
        )
        return LoginOutcome(None, error, retry_after)
    # Before the caller is known: the authenticator's narrow policy reads accounts by username.
    tenancy.bind(session, AUTHENTICATOR)
    account = await session.scalar(select(Account).where(Account.username == name))
    tenancy.bind(session, ctx.viewer)
    attempt = LoginAttempt(username=name, address=network, success=False, at=now)
    session.add(attempt)
    await session.flush()
    usable = account is not None and account.is_active
    return LoginTicket(
        username=name,
        address=address,
        network=network,
        attempt_id=attempt.id,
        account_id=account.id if account is not None else None,
        password_hash=account.password_hash if usable and account is not None else None,
    )


async def _username_wait(
    ctx: ServiceContext, name: str, network: str, policy: LoginPolicy, since: datetime, now: datetime
) -> float:
    """The delay of the per-username limit (failures from any network), or none from a network this
    username signed in from within the last `known_network_days` days (the owner's usual place)."""
    failures, last = (
        await ctx.session.execute(
            select(func.count(), func.max(LoginAttempt.at)).where(
                LoginAttempt.username == name, LoginAttempt.success.is_(False), LoginAttempt.at > since
            )
        )
    ).one()
    wait = policy.wait(failures, policy.username_max_failures, last, now)
    if wait <= 0:
        return 0.0
    return 0.0 if await _known_network(ctx, name, network, policy, now) else wait


async def _known_network(ctx: ServiceContext, name: str, network: str, policy: LoginPolicy, now: datetime) -> bool:
    """Whether this username signed in from this network within the last `known_network_days` days."""
    known = await ctx.session.scalar(
        select(LoginAttempt.id)
        .where(
            LoginAttempt.username == name,
            LoginAttempt.address == network,
            LoginAttempt.success.is_(True),
            LoginAttempt.at > now - timedelta(days=policy.known_network_days),
        )
        .limit(1)
    )
    return known is not None


async def _withdraw(ctx: ServiceContext, ticket: LoginTicket) -> None:
    await ctx.session.execute(delete(LoginAttempt).where(LoginAttempt.id == ticket.attempt_id))


async def _settle(ctx: ServiceContext, ticket: LoginTicket, verified: bool) -> LoginOutcome:
    account = None
    if verified and ticket.account_id is not None:
        # Read again: the account may have been deactivated (or its password changed) meanwhile.
        tenancy.bind(ctx.session, AUTHENTICATOR)
        account = await ctx.session.scalar(select(Account).where(Account.id == ticket.account_id))
        tenancy.bind(ctx.session, ctx.viewer)
        if account is None or not account.is_active or account.password_hash != ticket.password_hash:
            account = None
    if account is None:
        await _audit_attempt(ctx, None, ticket.username, ticket.address)
        return LoginOutcome(None, DomainError("UNAUTHENTICATED", WRONG_CREDENTIALS))
    await ctx.session.execute(update(LoginAttempt).where(LoginAttempt.id == ticket.attempt_id).values(success=True))
    await _audit_attempt(ctx, account, ticket.username, ticket.address)
    return LoginOutcome(account, None)


async def _audit_attempt(ctx: ServiceContext, account: Account | None, name: str, address: str, note: str = "") -> None:
    if account is not None:
        # Signed in: the entry is the account's, in its organisation's trail (and written as the account).
        ctx = dataclasses.replace(ctx, viewer=viewer_for(account))
    detail = f"username={name} address={address}" + (f" {note}" if note else "")
    await audit.append(
        ctx,
        audit.AuditRecord(
            action="login" if account is not None else "login_failed",
            operation="login",
            record_type="Account",
            record_id=account.id if account is not None else None,
            detail=detail,
        ),
    )


def _storable(text: str) -> str:
    """`text` as PostgreSQL can store it: no NUL, no lone surrogates (neither can be in a username)."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


async def change_password(ctx: ServiceContext, current: str, new: str) -> Account:
    if ctx.viewer.account_id is None:
        raise DomainError("UNAUTHENTICATED", "Sign in first.")
    account = await get(ctx, Account, ctx.viewer.account_id, what=_("Account"), lock=True)
    if not await verify_password(account.password_hash, current):
        raise DomainError("UNAUTHENTICATED", "The current password is wrong.", ("input", "currentPassword"))
    v = Validator()
    _password_rules(v, ("input", "newPassword"), new)
    v.check(new != current, ("input", "newPassword"), "INVALID_INPUT", "Choose a new password.")
    v.raise_if_any()
    account.password_hash = await hash_password(new)
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
    on every request, so a revoked grant stops working at once).

    One statement: it reads the account (or API token) as the authenticator -- inside a function whose
    SET clause confines that role to its own body (migration 0009) -- and sets the transaction's settings
    for what it found, or empty ones for a refused token. `session` then acts for the viewer (or for
    nobody, after a refusal) without another statement (`tenancy.adopt`)."""
    if token.startswith(API_TOKEN_PREFIX):
        row = await _check(session, _API_TOKEN_CHECK, {"token_hash": _sha256(token)})
        token_id, name, organization_id, revoked, org_set, role_set = row
        if token_id is None or revoked:
            await adopt(session, _NOBODY, (org_set, role_set))
            raise Unauthenticated("This API token is not valid.")
        viewer = Viewer(
            label=f"api:{name}",
            organization_id=organization_id,
            role=Role.PARTNER.value,
            api_token_id=token_id,
            extra_permissions=plugin_permissions.get(Role.PARTNER.value, frozenset()),
        )
        await adopt(session, viewer, (org_set, role_set))
        return viewer
    claims = _claims(token, secret, now)
    with_roles = host is not None and bool(plugin_roles.plugin_roles(host))
    row = await _check(
        session, _ACCOUNT_CHECK, {"account_id": claims.account_id, "version": claims.version, "with_roles": with_roles}
    )
    account_id, active, version, granted = row.id, row.is_active, row.token_version, row.plugin_roles
    applied = (row.org_setting, row.role_setting)
    # Checked here as well as in the statement: the settings it set are only trusted when they are exactly
    # the viewer's (`adopt` applies the viewer's own otherwise).
    if account_id is None or not active or version != claims.version:
        await adopt(session, _NOBODY, applied)
        raise Unauthenticated("The token has been revoked; sign in again.")
    viewer = viewer_for(row, plugin_permissions)
    if with_roles and granted:
        extra = plugin_roles.permissions_of(host, granted)
        viewer = dataclasses.replace(viewer, extra_permissions=viewer.extra_permissions | extra)
    await adopt(session, viewer, applied)
    return viewer


# Who a refused token leaves the transaction acting for: nobody (the statement set empty settings).
_NOBODY = Viewer()

# The statements of the bearer check, built once (they run on every signed-in request). `FROM (SELECT)
# LEFT JOIN`: one row even when nothing was found, so the settings are always set -- empty for a refused
# token -- whatever the transaction held before. The functions return only what the check needs.
# The result columns are declared (positionally, untyped: nothing to convert), so SQLAlchemy keeps the
# result's description with the compiled statement instead of building it from the cursor each time.
_SET_SETTINGS = (
    f"set_config('{tenancy.ORG_SETTING}', CASE WHEN c.ok THEN {{org}} ELSE '' END, true) AS org_setting, "
    f"set_config('{tenancy.ROLE_SETTING}', CASE WHEN c.ok THEN {{role}} ELSE '' END, true) AS role_setting"
)
_ACCOUNT_CHECK = text(
    "SELECT b.id, b.username, b.role, b.organization_id, b.community_id, b.volunteer_id, b.is_active, "
    "b.token_version, b.plugin_roles, "
    + _SET_SETTINGS.format(org="coalesce(b.organization_id::text, '')", role="b.role")
    + " FROM (SELECT) AS one LEFT JOIN app_bearer_account(:account_id, :with_roles) AS b ON true"
    " CROSS JOIN LATERAL (SELECT coalesce(b.is_active AND b.token_version = :version, false) AS ok) AS c"
).columns(
    *map(
        column,
        (
            "id",
            "username",
            "role",
            "organization_id",
            "community_id",
            "volunteer_id",
            "is_active",
            "token_version",
            "plugin_roles",
            "org_setting",
            "role_setting",
        ),
    )
)
_API_TOKEN_CHECK = text(
    "SELECT t.id, t.name, t.organization_id, t.revoked, "
    + _SET_SETTINGS.format(org="t.organization_id::text", role=f"'{Role.PARTNER.value}'")
    + " FROM (SELECT) AS one LEFT JOIN app_api_token(:token_hash) AS t ON true"
    " CROSS JOIN LATERAL (SELECT coalesce(NOT t.revoked, false) AS ok) AS c"
).columns(*map(column, ("id", "name", "organization_id", "revoked", "org_setting", "role_setting")))


async def _check(session: Any, statement: Any, params: dict[str, Any]) -> Any:
    """Run a bearer check on `session`'s connection: Core, not the ORM (nothing to hydrate), in one hop
    into SQLAlchemy's greenlet."""
    return await session.run_sync(lambda sync: sync.connection().execute(statement, params).one())


@dataclass(frozen=True)
class _Claims:
    account_id: int
    version: int
    expires: int
    issued: int
    not_before: int


# An account id as `sub`: decimal digits only (int() would also take "٣", " 7", "1_0" or "+1"), and
# within PostgreSQL's bigint (a larger one would fail in the database, not here).
_SUBJECT = re.compile(r"[1-9][0-9]{0,18}")
_BIGINT_MAX = 2**63 - 1
# Clocks of several processes differ a little; a token "issued" this far in the future is still fine.
_LEEWAY_SECONDS = 60


def _int_claim(claims: dict[str, Any], name: str, *, default: int | None = None, high: int = _BIGINT_MAX) -> int:
    value = claims.get(name, default)
    # bool is an int in Python, and JSON's 1.0 compares equal to 1: neither is a claim we issue.
    if type(value) is not int or not 0 <= value <= high:
        raise Unauthenticated("The token is not valid.")
    return value


def _claims(token: str, secret: str, now: datetime) -> _Claims:
    """The claims of a token signed with `secret`, checked strictly: Unauthenticated for anything we
    would not have issued (a missing claim, a claim of the wrong type or out of range), never a crash."""
    claims = _signed_claims(token, secret)
    # Time claims are checked against the service's clock (injectable in tests), on every request.
    moment = now.timestamp()
    if claims.issued > moment + _LEEWAY_SECONDS or claims.not_before > moment + _LEEWAY_SECONDS:
        raise Unauthenticated("The token is not valid yet.")
    if claims.expires <= moment:
        raise Unauthenticated("The token has expired; sign in again.")
    return claims


# Verifying a token (base64, JSON, HMAC, the claim checks) is ~0.1 ms, a tenth of a trivial request, and a
# client sends the same token with every request. What it yields depends on the token and the key alone, so
# it is cached; only tokens that pass are (lru_cache keeps no exceptions): a forged token pays the whole
# check every time and cannot push anything into the cache. Bounded: one entry is a few hundred bytes.
@functools.lru_cache(maxsize=4096)
def _signed_claims(token: str, secret: str) -> _Claims:
    try:
        # The library checks the signature, the issuer and that the claims are present; the time claims
        # are the caller's (`_claims`), against the service's clock.
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=ISSUER,
            options={
                "require": ["iss", "sub", "exp", "iat", "ver"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError, RecursionError):
        # PyJWTError covers what the library anticipates; the others, a payload it did not (a JSON
        # number too large for a float, nesting too deep to parse) must not escape as a 500 either.
        raise Unauthenticated("The token is not valid.") from None
    if not isinstance(claims, dict):
        raise Unauthenticated("The token is not valid.")
    subject = claims.get("sub")
    if not (isinstance(subject, str) and _SUBJECT.fullmatch(subject) and int(subject) <= _BIGINT_MAX):
        raise Unauthenticated("The token is not valid.")
    return _Claims(
        account_id=int(subject),
        version=_int_claim(claims, "ver", high=2**31 - 1),
        expires=_int_claim(claims, "exp"),
        issued=_int_claim(claims, "iat"),
        not_before=_int_claim(claims, "nbf", default=0),
    )


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- API tokens ----------------------------------------------------------------------------------------------------


async def create_api_token(ctx: ServiceContext, organization_id: int, name: str) -> tuple[str, ApiToken]:
    """A new API token for a partner system of `organization_id`; the plain token is returned only now."""
    access.require(ctx, "tokens.manage")
    _same_org(ctx, organization_id)
    v = Validator()
    clean = check.text(v, ("input", "name"), name, max_length=100, label=_("Name"))
    v.raise_if_any()
    await get(ctx, Organization, organization_id, what=_("Organisation"), field=("input", "organizationId"))
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
    token = await get(ctx, ApiToken, token_id, what=_("API token"), lock=True)
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
    return await get(ctx, Account, account_id, what=_("Account"))
