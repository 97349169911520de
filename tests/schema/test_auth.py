"""Sign-in, tokens (forged, expired, revoked), throttling, and the audit trail of sensitive reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.models import AuditEntry
from core.plugins import build_plugin_host
from core.services import auth, organizations
from core.services.context import ServiceContext, Viewer
from core.settings import Settings
from core.vocab import OrganizationKind, Role
from tests.factories import Factory
from tests.schema.helpers import gid
from yunshegong.app import create_app

PASSWORD = "a long enough password"
LOGIN = (
    "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
    "{ token expiresAt errors { code message } } }"
)
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
    settings = Settings(secret_key="test-secret-0123456789-0123456789-0123", token_ttl_minutes=60, login_max_failures=3)
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


async def test_wrong_password_and_unknown_user_look_the_same(
    api: Api, accounts: dict[str, int], owner_engine: AsyncEngine
) -> None:
    wrong = await api.login("admin", "not the password")
    unknown = await api.login("nobody", "not the password")
    assert (
        wrong
        == unknown
        == {
            "token": None,
            "expiresAt": None,
            "errors": [{"code": "UNAUTHENTICATED", "message": "Wrong username or password."}],
        }
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
    # when the right password follows
    throttled = await api.login("admin")
    # then sign-in is paused, and resumes after the window
    assert throttled["errors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    clock.now += timedelta(minutes=16)
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
    response = await api.post(ME, token=token)
    assert response.status_code == 401
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
