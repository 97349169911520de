"""The bearer check below the API (core.services.auth.authenticate_bearer): one statement reads the token's
account or API token and sets the transaction's settings for it, so the session acts for exactly that
viewer from then on without another statement -- and for nobody after a refusal, whatever it acted for
before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import event, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core import tenancy
from core.database import create_sessionmaker
from core.models import Account
from core.services import auth
from core.services.context import ServiceContext, Viewer
from core.vocab import Role
from tests.conftest import Clock

PASSWORD = "a long enough password"
SECRET = "bearer-check secret, long enough for HS256"
SETTINGS = text(
    f"SELECT current_setting('{tenancy.ORG_SETTING}', true), current_setting('{tenancy.ROLE_SETTING}', true)"
)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", on_statement)
    yield seen
    event.remove(engine.sync_engine, "before_cursor_execute", on_statement)


async def _account(ctx: ServiceContext, username: str, role: Role, organization_id: int | None) -> Account:
    account = await auth.create_account(ctx, auth.AccountInput(username, username, PASSWORD, role, organization_id))
    await ctx.session.commit()
    return account


async def _check(
    engine: AsyncEngine, token: str, clock: Clock, *, before: Viewer | None = None
) -> tuple[Viewer | None, tuple[str, str]]:
    """The bearer check on a fresh session (or on one whose transaction began acting for `before`): the
    viewer (None when refused) and the settings the session's next statement runs with."""
    async with create_sessionmaker(engine)() as session:
        if before is not None:
            tenancy.bind(session, before)
            await session.execute(SETTINGS)
        try:
            viewer: Viewer | None = await auth.authenticate_bearer(session, token, SECRET, clock(), {})
        except auth.Unauthenticated:
            viewer = None
        settings = (await session.execute(SETTINGS)).one()
        return viewer, (settings[0], settings[1])


async def test_the_check_sets_the_accounts_settings_itself_and_nothing_applies_them_again(
    engine: AsyncEngine, ctx: ServiceContext, home_org: int, clock: Clock, statements: list[str]
) -> None:
    # given an organisation member and a platform administrator of no organisation, with tokens
    member = await _account(ctx, "member", Role.ORGANIZATION_ADMIN, home_org)
    platform = await _account(ctx, "platform", Role.PLATFORM_ADMIN, None)
    for account, expected in ((member, (str(home_org), "organization_admin")), (platform, ("", "platform_admin"))):
        token, _ = auth.issue_token(account, SECRET, clock(), 60)
        statements.clear()
        # when the token is checked and the session then runs a statement
        viewer, settings = await _check(engine, token, clock)
        # then the viewer is the account's, the statement runs with its settings, and the check was the one
        # statement before it (no set_config for the authenticator, none for the caller)
        assert viewer is not None
        assert (viewer.account_id, viewer.organization_id, viewer.role) == (
            account.id,
            account.organization_id,
            account.role,
        )
        assert settings == expected
        assert len(statements) == 2, statements
        assert "app_bearer_account" in statements[0]


@pytest.mark.parametrize("change", ["password changed", "deactivated", "deleted"])
async def test_a_refused_token_leaves_the_transaction_acting_for_nobody(
    engine: AsyncEngine, ctx: ServiceContext, home_org: int, clock: Clock, admin: Viewer, change: str
) -> None:
    # given a member's token, then the member's password changed (or the account deactivated, or deleted)
    member = await _account(ctx, "member", Role.ORGANIZATION_ADMIN, home_org)
    token, _ = auth.issue_token(member, SECRET, clock(), 60)
    values: dict[str, Any] = {"token_version": member.token_version + 1}
    if change == "deactivated":
        values = {"is_active": False}
    if change == "deleted":
        await ctx.session.execute(text("DELETE FROM accounts WHERE id = :id"), {"id": member.id})
    else:
        await ctx.session.execute(update(Account).where(Account.id == member.id).values(**values))
    await ctx.session.commit()
    # when the token is checked in a transaction that began acting for a platform administrator
    viewer, settings = await _check(engine, token, clock, before=admin)
    # then it is refused, and the transaction's next statement acts for nobody
    assert viewer is None
    assert settings == ("", "")


async def test_an_api_token_is_checked_and_sets_the_partner_settings_in_one_statement(
    engine: AsyncEngine, ctx: ServiceContext, home_org: int, clock: Clock, admin: Viewer, statements: list[str]
) -> None:
    # given an API token of the organisation
    plain, row = await auth.create_api_token(ctx, home_org, "partner system")
    await ctx.session.commit()
    statements.clear()
    # when it is checked
    viewer, settings = await _check(engine, plain, clock)
    # then it acts for the organisation as a partner, with the settings its check set
    assert viewer is not None
    assert (viewer.api_token_id, viewer.organization_id, viewer.role) == (row.id, home_org, Role.PARTNER.value)
    assert settings == (str(home_org), Role.PARTNER.value)
    assert len(statements) == 2, statements
    # and once revoked it is refused, leaving the transaction acting for nobody
    await auth.revoke_api_token(ctx, row.id)
    await ctx.session.commit()
    viewer, settings = await _check(engine, plain, clock, before=admin)
    assert viewer is None
    assert settings == ("", "")


async def test_the_check_reads_what_it_needs_and_nothing_else_as_the_authenticator(
    engine: AsyncEngine, ctx: ServiceContext, home_org: int
) -> None:
    # given an account
    member = await _account(ctx, "member", Role.ORGANIZATION_ADMIN, home_org)
    async with engine.connect() as conn:
        # when a connection that acts for nobody calls the check's function
        row = (await conn.execute(text("SELECT * FROM app_bearer_account(:id, true)"), {"id": member.id})).one()
        after = (await conn.execute(SETTINGS)).one()
        # then it gets the account's identity (never its password hash), and the authenticator's role did
        # not outlive the function
        assert "password_hash" not in row._mapping
        assert (row.id, row.role) == (member.id, "organization_admin")
        assert after[1] in (None, "")
        # and nothing else became readable
        assert await conn.scalar(text("SELECT count(*) FROM accounts")) == 0
