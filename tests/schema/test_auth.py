"""Sign-in, tokens (forged, expired, revoked, odd claims), throttling, client addresses behind proxies,
hashing off the event loop, and the audit trail of sensitive reads."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.models import AuditEntry, LoginAttempt
from core.plugins import build_plugin_host
from core.services import auth, organizations, passwords
from core.services.context import ServiceContext, Viewer
from core.settings import Settings, trusted_networks
from core.vocab import OrganizationKind, Role
from schema.mutations.auth import client_address
from tests.concurrency import Racer
from tests.factories import Factory
from tests.loop_watch import LoopWatchingHasher
from tests.schema.helpers import gid
from yunshegong.app import create_app

PASSWORD = "a long enough password"
LOGIN = (
    "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
    "{ token expiresAt errors { code message } } }"
)
LOGIN_WAIT = (
    "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
    "{ token retryAfter errors { code } } }"
)
SECRET = "test-secret-0123456789-0123456789-0123"
ME = "{ me { label role account { username } permissions } }"


class Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    async def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        return (await self.post(LOGIN, {"u": username, "p": password})).json()["data"]["login"]


@pytest.fixture
async def api(engine: AsyncEngine, clock: Any) -> AsyncIterator[Api]:
    settings = Settings(secret_key=SECRET, token_ttl_minutes=60, login_max_failures=3)
    app = create_app(settings, engine=engine, host=build_plugin_host(entry_points=False))
    # The app's clock drives token expiry; tests move it instead of sleeping.
    app.routes[0].app.state.clock = clock  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield Api(http)


@pytest.fixture
async def accounts(engine: AsyncEngine) -> dict[str, int]:
    async with create_sessionmaker(engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=Viewer(label="setup", role="platform_admin"))
        org = await organizations.create_organization(ctx, name="协会", kind=OrganizationKind.ASSOCIATION)
        admin = await auth.create_account(
            ctx, auth.AccountInput("admin", "管理员", PASSWORD, Role.PLATFORM_ADMIN, org.id)
        )
        return {"org": org.id, "admin": admin.id}


async def test_a_sign_in_is_in_the_accounts_organisations_trail(
    api: Api, accounts: dict[str, int], owner_engine: AsyncEngine
) -> None:
    # when the administrator signs in
    assert (await api.login("admin"))["errors"] == []
    # then the entry names the account and its organisation (whose administrators read it)
    async with owner_engine.connect() as conn:
        entry = (
            await conn.execute(
                select(AuditEntry.action, AuditEntry.actor, AuditEntry.organization_id, AuditEntry.record_id)
            )
        ).one()
    assert tuple(entry) == ("login", "admin", accounts["org"], accounts["admin"])


async def test_login_and_me(api: Api, accounts: dict[str, int]) -> None:
    # when the administrator signs in (username is case-insensitive)
    login = await api.login("ADMIN")
    # then a bearer token identifies them
    assert login["errors"] == []
    me = (await api.post(ME, token=login["token"])).json()["data"]["me"]
    assert (me["label"], me["role"], me["account"]) == ("admin", "PLATFORM_ADMIN", {"username": "admin"})
    assert "audit.read" in me["permissions"]
    anonymous = (await api.post(ME)).json()["data"]["me"]
    assert (anonymous["role"], anonymous["permissions"]) == (None, [])


CREATE_ACCOUNT = (
    'mutation($u: String!) { createAccount(input: {username: $u, displayName: "社工", '
    'password: "a-long-enough-password-1", role: SOCIAL_WORKER}) { account { username } errors { code field } } }'
)


async def test_one_username_has_one_spelling(api: Api, accounts: dict[str, int]) -> None:
    # given the administrator signed in, and an account named with a composed é
    token = (await api.login("admin"))["token"]

    async def create(username: str) -> dict[str, Any]:
        return (await api.post(CREATE_ACCOUNT, {"u": username}, token=token)).json()["data"]["createAccount"]

    assert await create("rené") == {"account": {"username": "rené"}, "errors": []}
    # when look-alikes of existing names are created: full width, capitals, e + a combining accent
    # then each is the existing account, not a second one
    for look_alike in ("ａｄｍｉｎ", "ＡＤＭＩＮ", "rene\u0301", "RENÉ"):
        assert (await create(look_alike))["errors"] == [{"code": "ALREADY_EXISTS", "field": ["input", "username"]}]
    # when a name hides an invisible or blank character, then it is refused as it is
    for hidden in ("ad\u200bmin", "ad min", "admin\u202e"):
        assert (await create(hidden))["errors"] == [{"code": "INVALID_INPUT", "field": ["input", "username"]}]
    # and signing in with another spelling of a name reaches its account
    for spelling in ("ａｄｍｉｎ", "rene\u0301"):
        password = PASSWORD if spelling == "ａｄｍｉｎ" else "a-long-enough-password-1"
        assert (await api.login(spelling, password))["errors"] == [], spelling


async def test_wrong_password_and_unknown_user_look_the_same(
    api: Api, accounts: dict[str, int], owner_engine: AsyncEngine
) -> None:
    wrong = await api.login("admin", "not the password")
    unknown = await api.login("nobody", "not the password")
    assert wrong == unknown
    assert (wrong["token"], wrong["expiresAt"], [e["code"] for e in wrong["errors"]]) == (
        None,
        None,
        ["UNAUTHENTICATED"],
    )
    # and both attempts are in the audit trail
    async with owner_engine.connect() as conn:
        rows = (await conn.execute(select(AuditEntry.action, AuditEntry.detail).order_by(AuditEntry.id))).all()
    assert [r.action for r in rows] == ["login_failed", "login_failed"]
    assert "username=nobody" in rows[1].detail


async def test_repeated_failures_are_throttled(api: Api, accounts: dict[str, int], clock) -> None:  # type: ignore[no-untyped-def]
    # given three failed attempts (the limit in these settings)
    for _ in range(3):
        await api.login("admin", "guess")
    # when the right password follows at once
    body = (await api.post(LOGIN_WAIT, {"u": "admin", "p": PASSWORD})).json()["data"]["login"]
    # then sign-in is paused for as long as it says, and resumes after that
    assert body == {"token": None, "retryAfter": 1, "errors": [{"code": "TOO_MANY_ATTEMPTS"}]}
    clock.now += timedelta(seconds=body["retryAfter"])
    assert (await api.login("admin"))["errors"] == []


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "Bearer",
        jwt.encode(
            {"sub": "1", "ver": 1, "iss": "yunshegong", "exp": 4102444800}, "a-wrong-key-that-is-long-enough-0123456789"
        ),
        "ysg_not_a_real_token",
    ],
    ids=["garbage", "empty", "forged", "unknown-api-token"],
)
async def test_bad_tokens_are_refused_with_401(api: Api, accounts: dict[str, int], token: str) -> None:
    response = await api.post(ME, token=token)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_tampered_token_is_refused(api: Api, accounts: dict[str, int]) -> None:
    token = (await api.login("admin"))["token"]
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    assert (await api.post(ME, token=tampered)).status_code == 401


async def test_expired_token_is_refused(api: Api, accounts: dict[str, int], clock) -> None:  # type: ignore[no-untyped-def]
    token = (await api.login("admin"))["token"]
    clock.now += timedelta(minutes=61)
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    response = await api.http.post("/graphql", json={"query": ME}, headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "expired" in response.json()["errors"][0]["message"]


async def test_password_change_revokes_older_tokens(api: Api, accounts: dict[str, int]) -> None:
    old = (await api.login("admin"))["token"]
    change = await api.post(
        'mutation { changePassword(input: {currentPassword: "a long enough password", '
        'newPassword: "another long password"}) '
        "{ token errors { code } } }",
        token=old,
    )
    new = change.json()["data"]["changePassword"]["token"]
    assert (await api.post(ME, token=old)).status_code == 401
    # the new token is a real one that signs the administrator in (not anonymous)
    assert isinstance(new, str)
    assert new
    me = (await api.post(ME, token=new)).json()["data"]["me"]
    assert (me["role"], me["account"]) == ("PLATFORM_ADMIN", {"username": "admin"})
    assert (await api.login("admin"))["errors"][0]["code"] == "UNAUTHENTICATED"


async def test_api_tokens_are_shown_once_scoped_and_revocable(
    api: Api, accounts: dict[str, int], owner_engine: AsyncEngine
) -> None:
    admin = (await api.login("admin"))["token"]
    created = (
        await api.post(
            'mutation($o: ID!) { createApiToken(input: {organizationId: $o, name: "胸科医院"}) '
            "{ token apiToken { id prefix } errors { code } } }",
            {"o": gid("Organization", accounts["org"])},
            token=admin,
        )
    ).json()["data"]["createApiToken"]
    plain = created["token"]
    assert plain.startswith("ysg_")
    assert plain.startswith(created["apiToken"]["prefix"])
    # the token acts as a partner system of that organisation
    me = (await api.post(ME, token=plain)).json()["data"]["me"]
    assert (me["role"], me["label"]) == ("PARTNER", "api:胸科医院")
    # only its hash is stored
    async with owner_engine.connect() as conn:
        stored = (await conn.execute(text("SELECT token_hash FROM api_tokens"))).scalar_one()
    assert plain not in stored
    # and once revoked it is refused
    await api.post(
        "mutation($id: ID!) { revokeApiToken(input: {id: $id}) { errors { code } } }",
        {"id": created["apiToken"]["id"]},
        token=admin,
    )
    assert (await api.post(ME, token=plain)).status_code == 401


async def test_sensitive_reads_are_audited_and_masked_reads_are_not(
    api: Api, accounts: dict[str, int], make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    # given a request with a requester's phone, read by the administrator
    request = await make.request(requester_phone="13812345678", health_details="妊娠32周")
    admin = (await api.login("admin"))["token"]
    query = "query($id: ID!) { node(id: $id) { ... on HelpRequest { title requesterPhone healthDetails } } }"
    body = (await api.post(query, {"id": gid("HelpRequest", request.id)}, token=admin)).json()
    assert body["data"]["node"]["requesterPhone"] == "13812345678"
    # then the read is in the audit trail with the fields revealed, and admins can query it
    async with owner_engine.connect() as conn:
        read = (
            await conn.execute(
                select(AuditEntry).where(AuditEntry.action == "read").order_by(AuditEntry.id.desc()).limit(1)
            )
        ).one()
    assert (read.actor, read.record_type, read.record_id) == ("admin", "HelpRequest", request.id)
    assert sorted(read.fields) == ["healthDetails", "requesterPhone"]
    log = (
        await api.post(
            'query($id: ID!) { auditLog(recordId: $id, actions: ["read"]) { totalCount nodes { actor fields } } }',
            {"id": gid("HelpRequest", request.id)},
            token=admin,
        )
    ).json()["data"]["auditLog"]
    assert log == {"totalCount": 1, "nodes": [{"actor": "admin", "fields": ["healthDetails", "requesterPhone"]}]}


async def test_writes_and_refusals_are_audited(
    api: Api, accounts: dict[str, int], make: Factory, owner_engine: AsyncEngine
) -> None:
    request = await make.request()
    admin = (await api.login("admin"))["token"]
    verify = "mutation($id: ID!) { verifyHelpRequest(input: {id: $id}) { errors { code } } }"
    await api.post(verify, {"id": gid("HelpRequest", request.id)}, token=admin)
    await api.post(verify, {"id": gid("HelpRequest", request.id)})  # anonymous: refused
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                select(AuditEntry.action, AuditEntry.operation, AuditEntry.actor, AuditEntry.record_id)
                .where(AuditEntry.action.in_(["write", "denied"]))
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("write", "verifyHelpRequest", "admin", request.id),
        ("denied", "verifyHelpRequest", "anonymous", None),
    ]


async def test_nobody_can_edit_the_audit_trail(api: Api, accounts: dict[str, int], owner_engine: AsyncEngine) -> None:
    await api.login("admin", "wrong password")
    # no mutation touches it
    schema = (await api.post("{ __schema { mutationType { fields { name } } } }")).json()
    assert not [f["name"] for f in schema["data"]["__schema"]["mutationType"]["fields"] if "audit" in f["name"].lower()]
    # and the database refuses edits and deletes, whoever asks
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with owner_engine.begin() as conn:
                await conn.execute(text(statement))


async def test_audit_log_filter_with_a_malformed_id_is_a_typed_error(api: Api, accounts: dict[str, int]) -> None:
    admin = (await api.login("admin"))["token"]
    body = (await api.post('{ auditLog(recordId: "nonsense") { totalCount } }', token=admin)).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"


# -- tokens signed with the right key but claims we never issue -----------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed(payload: Any, *, raw: bytes | None = None) -> str:
    """An HS256 token over `payload` (or exactly the bytes `raw`), signed with the service's key."""
    body = raw if raw is not None else json.dumps(payload).encode()
    head = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(body)}"
    signature = hmac.new(SECRET.encode(), head.encode(), hashlib.sha256).digest()
    return f"{head}.{_b64(signature)}"


def claims(account: int, **changes: Any) -> dict[str, Any]:
    """The claims of a real token for `account`, with `changes` (None removes a claim)."""
    now = int(time.time())
    base: dict[str, Any] = {"iss": "yunshegong", "sub": str(account), "ver": 1, "iat": now, "exp": now + 600}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def _raw(account: int, exp: str) -> bytes:
    return b'{"iss":"yunshegong","sub":"%d","ver":1,"iat":1,"exp":%s}' % (account, exp.encode())


ARABIC_DIGITS = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")
# Each names the account the test signed in (a real, active account of token version 1), so a claim
# the service misreads as valid lets the token in: only the odd claim stands between it and a 200.
ODD_TOKENS: dict[str, Callable[[int], str]] = {
    "sub-letters": lambda a: signed(claims(a, sub="abc")),
    "sub-missing": lambda a: signed(claims(a, sub=None)),
    "sub-float": lambda a: signed(claims(a, sub=float(a))),
    "sub-int": lambda a: signed(claims(a, sub=a)),
    "sub-list": lambda a: signed(claims(a, sub=[str(a)])),
    "sub-huge": lambda a: signed(claims(a, sub="9" * 40)),
    "sub-just-over-bigint": lambda a: signed(claims(a, sub=str(2**63))),
    "sub-arabic-digits": lambda a: signed(claims(a, sub=str(a).translate(ARABIC_DIGITS))),
    "sub-space": lambda a: signed(claims(a, sub=f" {a}")),
    "sub-underscore": lambda a: signed(claims(a, sub=f"0_{a}")),
    "sub-plus": lambda a: signed(claims(a, sub=f"+{a}")),
    "sub-leading-zero": lambda a: signed(claims(a, sub=f"0{a}")),
    "sub-negative": lambda a: signed(claims(a, sub=f"-{a}")),
    "exp-text": lambda a: signed(claims(a, exp="soon")),
    "exp-missing": lambda a: signed(claims(a, exp=None)),
    "exp-float": lambda a: signed(claims(a, exp=4102444800.5)),
    "exp-huge": lambda a: signed(claims(a, exp=10**40)),
    "exp-infinite": lambda a: signed(None, raw=_raw(a, "1e999")),
    "exp-nan": lambda a: signed(None, raw=_raw(a, "NaN")),
    "exp-bool": lambda a: signed(claims(a, exp=True)),
    "iat-text": lambda a: signed(claims(a, iat="now")),
    "iat-missing": lambda a: signed(claims(a, iat=None)),
    "iat-future": lambda a: signed(claims(a, iat=int(time.time()) + 86400)),
    "nbf-text": lambda a: signed(claims(a, nbf="later")),
    "nbf-list": lambda a: signed(claims(a, nbf=[1])),
    "nbf-future": lambda a: signed(claims(a, nbf=int(time.time()) + 86400)),
    "ver-bool": lambda a: signed(claims(a, ver=True)),
    "ver-text": lambda a: signed(claims(a, ver="1")),
    "ver-float": lambda a: signed(claims(a, ver=1.0)),
    "ver-huge": lambda a: signed(claims(a, ver=10**40)),
    "ver-missing": lambda a: signed(claims(a, ver=None)),
    "iss-list": lambda a: signed(claims(a, iss=["yunshegong"])),
    "iss-missing": lambda a: signed(claims(a, iss=None)),
    "payload-list": lambda a: signed(None, raw=b"[1, 2]"),
    "payload-not-json": lambda a: signed(None, raw=b"\xff\xfe not json"),
    "payload-deep": lambda a: signed(None, raw=b'{"sub":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "unknown-account": lambda a: signed(claims(a, sub=str(a + 1000))),
}


@pytest.mark.parametrize("make_token", list(ODD_TOKENS.values()), ids=list(ODD_TOKENS))
async def test_tokens_with_odd_claims_are_refused_with_401(
    api: Api, accounts: dict[str, int], make_token: Callable[[int], str]
) -> None:
    response = await api.post(ME, token=make_token(accounts["admin"]))
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_token_made_like_ours_is_accepted(api: Api, accounts: dict[str, int]) -> None:
    # the positive control of the table above: the same construction with sane claims signs in
    response = await api.post(ME, token=signed(claims(accounts["admin"])))
    assert response.status_code == 200
    assert response.json()["data"]["me"]["account"] == {"username": "admin"}


# -- client addresses: X-Forwarded-For only from trusted proxies --------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        # no trusted proxies (the default): the header is anyone's to write
        ("127.0.0.1", ["6.6.6.6"], (), "127.0.0.1"),
        ("203.0.113.9", ["6.6.6.6"], (), "203.0.113.9"),
        # a peer that is not a trusted proxy: its header is ignored
        ("203.0.113.9", ["6.6.6.6"], ("10.0.0.0/8",), "203.0.113.9"),
        # a trusted proxy: the right-most hop that is not a trusted proxy is the client
        ("10.0.0.2", ["6.6.6.6, 198.51.100.7"], ("10.0.0.0/8",), "198.51.100.7"),
        ("10.0.0.2", ["6.6.6.6, 198.51.100.7, 10.0.0.3"], ("10.0.0.0/8",), "198.51.100.7"),
        ("10.0.0.2", ["6.6.6.6", "198.51.100.7"], ("10.0.0.0/8",), "198.51.100.7"),
        ("::1", ["2001:db8::7"], ("::1",), "2001:db8::7"),
        ("127.0.0.1", ["[2001:db8::7]:443"], ("127.0.0.1",), "2001:db8::7"),
        ("127.0.0.1", ["198.51.100.7:5123"], ("127.0.0.1",), "198.51.100.7"),
        ("127.0.0.1", ["::ffff:198.51.100.7"], ("127.0.0.1",), "198.51.100.7"),
        # a trusted proxy without the header, or only trusted hops: the left-most trusted hop
        ("10.0.0.2", [], ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", ["10.0.0.9"], ("10.0.0.0/8",), "10.0.0.9"),
        # garbage where the proxy should have written an address: nothing left of it is believed
        ("10.0.0.2", ["198.51.100.7, not-an-ip"], ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", ["not-an-ip, 198.51.100.7"], ("10.0.0.0/8",), "198.51.100.7"),
        # a peer that is not an IP address (a test client, a unix socket)
        ("testclient", ["6.6.6.6"], ("10.0.0.0/8",), "testclient"),
        (None, ["6.6.6.6"], ("10.0.0.0/8",), "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], trusted: tuple[str, ...], expected: str) -> None:
    assert client_address(peer, forwarded, trusted_networks(trusted)) == expected


def test_a_bad_trusted_proxy_entry_is_named() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        trusted_networks(("10.0.0.1", "10.0.0.300"))


async def _addresses_recorded(owner_engine: AsyncEngine) -> list[str]:
    async with owner_engine.connect() as conn:
        return list((await conn.execute(select(LoginAttempt.address).order_by(LoginAttempt.id))).scalars())


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [((), ["127.0.0.1", "127.0.0.1"]), (("127.0.0.1",), ["6.6.6.6", "7.7.7.7"])],
    ids=["untrusted", "trusted-proxy"],
)
async def test_sign_in_counts_by_the_address_the_settings_believe(
    engine: AsyncEngine,
    accounts: dict[str, int],
    owner_engine: AsyncEngine,
    trusted: tuple[str, ...],
    expected: list[str],
) -> None:
    # given a service reached from 127.0.0.1 (a local proxy, or anyone on the machine)
    settings = Settings(secret_key=SECRET, trusted_proxies=trusted)
    app = create_app(settings, engine=engine, host=build_plugin_host(entry_points=False))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        # when two sign-ins claim different addresses in X-Forwarded-For
        for claimed in ("6.6.6.6", "7.7.7.7"):
            await http.post(
                "/graphql",
                json={"query": LOGIN, "variables": {"u": "admin", "p": "wrong guess"}},
                headers={"X-Forwarded-For": claimed},
            )
    # then the header decides only when 127.0.0.1 is configured as a trusted proxy
    assert await _addresses_recorded(owner_engine) == expected


# -- hashing off the event loop, and its cap ----------------------------------------------------------------------


async def test_sign_ins_do_not_stall_the_service(
    api: Api, accounts: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the default cap, and a hasher that notices whether the event loop runs while it hashes
    work = passwords.PasswordWork(concurrency=2, wait_seconds=60)
    monkeypatch.setattr(passwords, "_work", work)
    hasher = LoopWatchingHasher()
    monkeypatch.setattr(auth, "_hasher", hasher)
    # when four sign-ins run
    try:
        async with hasher.ticking():
            outcomes = await asyncio.gather(*(api.login("admin") for _ in range(4)))
    finally:
        work.shutdown()
    # then every sign-in succeeded, and the event loop kept running through every verification
    assert [o["errors"] for o in outcomes] == [[]] * 4
    assert hasher.loop_moved == [True] * 4


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    released = threading.Event()
    yield released
    released.set()


async def test_sign_in_beyond_the_hashing_cap_is_busy(
    api: Api, accounts: dict[str, int], gate: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a cap of one hash at a time and that slot taken
    work = passwords.PasswordWork(concurrency=1, wait_seconds=0.05)
    monkeypatch.setattr(passwords, "_work", work)
    try:
        holder = asyncio.create_task(work.run(gate.wait))
        await asyncio.sleep(0.01)
        # when someone signs in
        response = await api.post(LOGIN_WAIT, {"u": "admin", "p": PASSWORD})
        # then the answer is a payload error BUSY with the seconds to wait (HTTP 200, not a 5xx)
        assert response.status_code == 200
        login = response.json()["data"]["login"]
        assert (login["token"], login["errors"]) == (None, [{"code": "BUSY"}])
        assert login["retryAfter"] >= 1
        gate.set()
        await holder
        assert (await api.login("admin"))["errors"] == []
    finally:
        work.shutdown()


# -- the throttle under a real parallel attack --------------------------------------------------------------------


class CountingHasher(PasswordHasher):
    """Cheap real argon2id that counts the passwords it verifies (from any thread)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verified += 1
        return super().verify(hash, password)


async def test_parallel_wrong_passwords_check_at_most_the_limit(
    db_url: URL, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    attackers, limit = 40, 5
    hasher = CountingHasher()
    monkeypatch.setattr(auth, "_hasher", hasher)
    # given the owner's account, and a service whose pool holds a warm connection for every request
    async with Racer.open(db_url, workers=attackers + 2) as racer:
        async with racer.sessionmaker() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=Viewer(label="setup", role="platform_admin"))
            org = await organizations.create_organization(ctx, name="协会", kind=OrganizationKind.ASSOCIATION)
            await auth.create_account(
                ctx, auth.AccountInput("owner", "主人", PASSWORD, Role.ORGANIZATION_ADMIN, org.id)
            )
        settings = Settings(secret_key=SECRET, login_max_failures=limit, trusted_proxies=("127.0.0.1",))
        app = create_app(settings, engine=racer.engine, host=build_plugin_host(entry_points=False))
        # The clock stands still: the delay after the fifth failure (1 s) never runs out during the attack.
        app.routes[0].app.state.clock = clock  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:

            async def login(password: str, address: str) -> dict[str, Any]:
                body = {"query": LOGIN_WAIT, "variables": {"u": "owner", "p": password}}
                response = await http.post("/graphql", json=body, headers={"X-Forwarded-For": address})
                return response.json()["data"]["login"]

            hasher.verified = 0
            # when 40 wrong passwords arrive at once from one address, and the owner signs in from home
            results = await asyncio.gather(
                *(login(f"guess number {i}", "203.0.113.66") for i in range(attackers)),
                login(PASSWORD, "198.51.100.7"),
            )
    # then at most `limit` guesses had their password checked, every other one was told to wait
    codes = [r["errors"][0]["code"] for r in results[:attackers]]
    assert codes.count("UNAUTHENTICATED") == limit
    # (told to wait: after the limit, or while another attempt of the pair is under way in this process)
    assert set(codes) - {"UNAUTHENTICATED"} <= {"TOO_MANY_ATTEMPTS", "BUSY"}
    assert hasher.verified == limit + 1  # the guesses, and the owner's own password
    # and the owner signed in meanwhile
    assert results[attackers]["errors"] == []
    assert results[attackers]["token"]


# -- the throttle counts networks, and a ceiling per username -----------------------------------------------------


@pytest.fixture
async def behind_proxy(engine: AsyncEngine, clock: Any) -> AsyncIterator[Callable[..., Any]]:
    """Sign-ins through a trusted local proxy that names the client in X-Forwarded-For (limit 3)."""
    settings = Settings(secret_key=SECRET, login_max_failures=3, trusted_proxies=("127.0.0.1",))
    app = create_app(settings, engine=engine, host=build_plugin_host(entry_points=False))
    app.routes[0].app.state.clock = clock  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:

        async def login(password: str, address: str, username: str = "admin") -> tuple[str | None, int | None]:
            body = {"query": LOGIN_WAIT, "variables": {"u": username, "p": password}}
            response = await http.post("/graphql", json=body, headers={"X-Forwarded-For": address})
            assert response.status_code == 200
            data = response.json()["data"]["login"]
            return (data["errors"][0]["code"] if data["errors"] else None), data["retryAfter"]

        yield login


async def test_addresses_of_one_ipv6_prefix_share_a_throttle(
    behind_proxy: Callable[..., Any], accounts: dict[str, int]
) -> None:
    # given three wrong passwords (the limit) from three addresses of one /64
    for address in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:abcd:ef01:2345:6789"):
        assert await behind_proxy("wrong guess", address) == ("UNAUTHENTICATED", None)
    # when a fourth address of that /64 tries, then it waits like the others
    assert await behind_proxy("wrong guess", "2001:db8:1:2:ffff::9") == ("TOO_MANY_ATTEMPTS", 1)
    # while an address of another /64 is not slowed
    assert await behind_proxy(PASSWORD, "2001:db8:1:3::1") == (None, None)


async def test_a_distributed_attack_on_admin_is_slowed_and_the_owner_at_home_signs_in(
    behind_proxy: Callable[..., Any], accounts: dict[str, int], clock: Any, owner_engine: AsyncEngine
) -> None:
    home = "2001:db8:aaaa:1::10"
    # given the administrator signed in from home yesterday (a phone on the same /64 today)
    assert await behind_proxy(PASSWORD, home) == (None, None)
    clock.now += timedelta(days=1)
    # and a botnet: ten times the limit of wrong passwords for admin, each from its own /64
    ceiling = 3 * auth.USERNAME_FACTOR
    for i in range(ceiling):
        assert await behind_proxy(f"guess {i}", f"2001:db8:bad:{i:x}::1") == ("UNAUTHENTICATED", None)
    # when one more /64 tries, then it waits (no fresh allowance for a fresh network)
    assert await behind_proxy("one more guess", "2001:db8:bad:ffff::1") == ("TOO_MANY_ATTEMPTS", 1)
    # and the owner at home signs in at once, from another address of the home /64
    assert await behind_proxy(PASSWORD, "2001:db8:aaaa:1::beef") == (None, None)
    # and the audit trail keeps the exact addresses
    async with owner_engine.connect() as conn:
        details = list((await conn.execute(select(AuditEntry.detail).order_by(AuditEntry.id))).scalars())
    assert "address=2001:db8:aaaa:1::beef" in details[-1]
