"""Sign-in below the API: password hashing off the event loop with a cap, and a throttle that cannot be
raced, counts networks (IPv4 address, IPv6 /64) rather than single addresses, slows the (username,
network) pair, the network and (from anywhere but the owner's recent networks) the username that failed."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import TypeVar

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.models import LoginAttempt
from core.services import auth, passwords
from core.services.context import ServiceContext, Viewer
from core.vocab import Role
from tests.concurrency import Racer, rounds
from tests.conftest import Clock
from tests.loop_watch import LoopWatchingHasher

T = TypeVar("T")
PASSWORD = "a long enough password"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
POLICY = auth.LoginPolicy(max_failures=5, window_minutes=15, max_delay_seconds=30.0, address_max_failures=12)
OWNER_ADDRESS = "198.51.100.7"
ATTACKER = "203.0.113.66"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real argon2id hashes with cheap parameters, verified by the same code.
    monkeypatch.setattr(auth, "_hasher", CHEAP)


class Transactions:
    """`auth.login`'s transaction runner over the test database, acting as an anonymous caller (as the
    API does before anyone is signed in)."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.sessionmaker = create_sessionmaker(engine)
        self.clock = clock

    async def __call__(self, fn: Callable[[ServiceContext], Awaitable[T]]) -> T:
        async with self.sessionmaker() as session, session.begin():
            return await fn(ServiceContext(session, Viewer(), clock=self.clock))


@pytest.fixture
def transact(engine: AsyncEngine, clock: Clock) -> Transactions:
    return Transactions(engine, clock)


@pytest.fixture
async def owner(ctx: ServiceContext, home_org: int) -> str:
    await auth.create_account(ctx, auth.AccountInput("owner", "主人", PASSWORD, Role.ORGANIZATION_ADMIN, home_org))
    await ctx.session.commit()
    return "owner"


async def _admission(ctx: ServiceContext, username: str, address: str, policy: auth.LoginPolicy) -> str:
    """One admission to a sign-in: "admitted" (the password would be checked next), or the refusal's code."""
    admitted = await auth.admit_login(ctx, username, address=address, policy=policy)
    if isinstance(admitted, auth.LoginOutcome):
        assert admitted.error is not None
        return admitted.error.code
    return "admitted"


async def sign_in(
    transact: Transactions, username: str, password: str = PASSWORD, address: str = OWNER_ADDRESS
) -> tuple[str | None, int | None]:
    outcome = await auth.login(transact, username, password, address=address, policy=POLICY)
    return (outcome.error.code if outcome.error else None), outcome.retry_after


# -- hashing off the event loop -----------------------------------------------------------------------------------


async def test_hashing_in_threads_keeps_the_event_loop_responsive() -> None:
    hasher = LoopWatchingHasher(patience=0.2)
    hashed = hasher.hash(PASSWORD)
    work = passwords.PasswordWork(concurrency=2, wait_seconds=60)
    try:
        # given a control: a verification on the event loop sees the loop stand still
        async with hasher.ticking():
            await asyncio.sleep(0.01)
            assert hasher.verify(hashed, PASSWORD)
        assert hasher.loop_moved == [False]
        # when four verifications run through the capped worker threads
        hasher.loop_moved.clear()
        hasher.patience = 5.0
        async with hasher.ticking():
            results = await asyncio.gather(*(work.run(hasher.verify, hashed, PASSWORD) for _ in range(4)))
        # then each one saw the event loop keep running while it worked
        assert results == [True] * 4
        assert hasher.loop_moved == [True] * 4
    finally:
        work.shutdown()


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    released = threading.Event()
    yield released
    released.set()


async def test_callers_beyond_the_cap_wait_briefly_then_get_busy(gate: threading.Event) -> None:
    # given a cap of one hash at a time, the slot taken by work that does not finish by itself
    work = passwords.PasswordWork(concurrency=1, wait_seconds=0.05)
    try:
        holder = asyncio.create_task(work.run(gate.wait))
        await asyncio.sleep(0.01)
        # when another caller asks for a slot
        with pytest.raises(passwords.Busy) as refused:
            await work.run(lambda: "never runs")
        # then it is refused with BUSY and a delay, not queued
        assert refused.value.code == "BUSY"
        assert refused.value.retry_after >= 1
        # and once the slot frees, work runs again
        gate.set()
        assert await holder is True
        assert await work.run(lambda: "runs") == "runs"
    finally:
        work.shutdown()


async def test_a_sign_in_beyond_the_cap_is_busy_and_does_not_count(
    transact: Transactions, owner: str, gate: threading.Event, monkeypatch: pytest.MonkeyPatch, engine: AsyncEngine
) -> None:
    # given every hashing slot taken
    work = passwords.PasswordWork(concurrency=1, wait_seconds=0.05)
    monkeypatch.setattr(passwords, "_work", work)
    try:
        holder = asyncio.create_task(work.run(gate.wait))
        await asyncio.sleep(0.01)
        # when the owner signs in
        code, retry_after = await sign_in(transact, owner)
        # then the answer is BUSY with a delay, and the attempt is not left counting as a failure
        assert (code, retry_after is not None and retry_after >= 1) == ("BUSY", True)
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(LoginAttempt)) == 0
        gate.set()
        await holder
        assert await sign_in(transact, owner) == (None, None)
    finally:
        work.shutdown()


# -- the throttle -----------------------------------------------------------------------------------------------


async def test_failures_slow_the_pair_progressively_and_the_owner_elsewhere_not_at_all(
    transact: Transactions, owner: str, clock: Clock
) -> None:
    # given five wrong passwords for the owner's account from the attacker's address (each one checked)
    for _ in range(POLICY.max_failures):
        assert await sign_in(transact, owner, "wrong guess", ATTACKER) == ("UNAUTHENTICATED", None)
    # then the next attempt from there is refused at once, with the seconds to wait
    assert await sign_in(transact, owner, "wrong guess", ATTACKER) == ("TOO_MANY_ATTEMPTS", 1)
    # while the owner, at their own address, signs in
    assert await sign_in(transact, owner) == (None, None)
    # and the attacker's delay doubles with every further failure, up to the cap
    waits = []
    for _ in range(7):
        code, wait = await sign_in(transact, owner, "wrong guess", ATTACKER)
        assert code == "TOO_MANY_ATTEMPTS"
        waits.append(wait)
        clock.now += timedelta(seconds=wait or 0)
        assert await sign_in(transact, owner, "wrong guess", ATTACKER) == ("UNAUTHENTICATED", None)
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    # even the right password waits out the delay at that address (a guess is a guess)
    assert (await sign_in(transact, owner, PASSWORD, ATTACKER))[0] == "TOO_MANY_ATTEMPTS"
    # and once the window has passed, the failures no longer count
    clock.now += timedelta(minutes=POLICY.window_minutes, seconds=1)
    assert await sign_in(transact, owner, PASSWORD, ATTACKER) == (None, None)


async def test_a_success_resets_the_pair(transact: Transactions, owner: str) -> None:
    # given a few mistakes and then the right password
    for _ in range(POLICY.max_failures - 1):
        await sign_in(transact, owner, "wrong guess")
    assert await sign_in(transact, owner) == (None, None)
    # when the owner mistypes again, they get the full allowance afresh
    for _ in range(POLICY.max_failures):
        assert await sign_in(transact, owner, "wrong guess") == ("UNAUTHENTICATED", None)
    assert (await sign_in(transact, owner, "wrong guess"))[0] == "TOO_MANY_ATTEMPTS"


async def test_an_address_spraying_usernames_is_slowed(transact: Transactions, owner: str) -> None:
    # given one address trying one password on many usernames (never twice the same)
    for i in range(POLICY.address_max_failures):
        assert await sign_in(transact, f"user{i}", "Winter2026!", ATTACKER) == ("UNAUTHENTICATED", None)
    # then a fresh username from that address waits too
    assert await sign_in(transact, "somebody-new", "Winter2026!", ATTACKER) == ("TOO_MANY_ATTEMPTS", 1)
    # but nobody elsewhere does
    assert await sign_in(transact, owner) == (None, None)


async def test_a_spray_from_the_owners_own_network_does_not_keep_the_owner_out(
    transact: Transactions, owner: str
) -> None:
    # given the owner signed in from the office network, and then someone there sprays other usernames
    # (found from outside: 25 failures for any usernames from 127.0.0.1 made admin's right password wait)
    assert await sign_in(transact, owner, address=ATTACKER) == (None, None)
    for i in range(POLICY.address_max_failures):
        assert await sign_in(transact, f"user{i}", "Winter2026!", ATTACKER) == ("UNAUTHENTICATED", None)
    # when the owner signs in there again, and a username never seen there tries
    own = await sign_in(transact, owner, address=ATTACKER)
    stranger = await sign_in(transact, "somebody-new", "Winter2026!", ATTACKER)
    # then the owner at their usual place gets in; the spray still slows everyone else there
    assert own == (None, None)
    assert stranger == ("TOO_MANY_ATTEMPTS", 1)


async def test_unknown_users_are_throttled_like_known_ones(transact: Transactions) -> None:
    for _ in range(POLICY.max_failures):
        assert await sign_in(transact, "nobody", "guess", ATTACKER) == ("UNAUTHENTICATED", None)
    assert (await sign_in(transact, "nobody", "guess", ATTACKER))[0] == "TOO_MANY_ATTEMPTS"


@pytest.mark.parametrize("username", ["a\x00b", "\ud800x", "x" * 500])
async def test_usernames_no_account_can_have_are_plain_failures(transact: Transactions, username: str) -> None:
    assert await sign_in(transact, username, "guess\ud800") == ("UNAUTHENTICATED", None)


# -- the race -----------------------------------------------------------------------------------------------------


async def test_parallel_guesses_cannot_outrun_the_count(
    ctx: ServiceContext, home_org: int, db_url: URL, clock: Clock
) -> None:
    """40 wrong attempts for one account from one address, admitted at the same instant on warmed
    connections, with the owner signing in from home meanwhile: at most `max_failures` get a password
    check, and the owner's attempt is admitted. (Admission is the step that decides whether a password
    is checked; `login` checks one per ticket, see tests/schema/test_auth.py for the whole request.)"""
    attackers = 40

    async with Racer.open(db_url, workers=attackers + 1, clock=clock) as racer:
        for n in range(rounds(2)):
            username = f"victim{n}"
            await auth.create_account(
                ctx, auth.AccountInput(username, "受害者", PASSWORD, Role.ORGANIZATION_ADMIN, home_org)
            )
            await ctx.session.commit()

            async def admit(wctx: ServiceContext, i: int, username: str = username) -> str:
                return await _admission(wctx, username, OWNER_ADDRESS if i == attackers else ATTACKER, POLICY)

            outcomes = await racer.race(admit, viewer=Viewer())
            assert outcomes[attackers] == "admitted"  # the owner, at home
            assert (
                sorted(outcomes[:attackers])
                == ["TOO_MANY_ATTEMPTS"] * (attackers - POLICY.max_failures) + ["admitted"] * POLICY.max_failures
            )
            # a new round starts outside the window of this one's failures
            clock.now += timedelta(minutes=POLICY.window_minutes + 1)


# -- networks, not single addresses, and a ceiling per username --------------------------------------------------


async def test_addresses_of_one_ipv6_prefix_share_a_throttle(transact: Transactions, owner: str) -> None:
    # given the limit of wrong passwords, each from a different address of one /64
    for i in range(POLICY.max_failures):
        assert await sign_in(transact, owner, "wrong guess", f"2001:db8:1:2::{i + 1:x}") == ("UNAUTHENTICATED", None)
    # when yet another address of that /64 tries
    fresh = await sign_in(transact, owner, "wrong guess", "2001:db8:1:2:ffff:ffff:ffff:fffe")
    # then it waits like the others (a fresh address is no fresh allowance)
    assert fresh == ("TOO_MANY_ATTEMPTS", 1)
    # while the neighbouring /64, another subscriber, is not slowed
    assert await sign_in(transact, owner, "wrong guess", "2001:db8:1:3::1") == ("UNAUTHENTICATED", None)


async def test_an_ipv4_mapped_address_is_its_ipv4_address(transact: Transactions, owner: str) -> None:
    # given the limit of wrong passwords from an IPv4 client seen through an IPv6 socket
    for _ in range(POLICY.max_failures):
        assert await sign_in(transact, owner, "wrong guess", f"::ffff:{ATTACKER}") == ("UNAUTHENTICATED", None)
    # then the same client written as plain IPv4 waits too
    assert await sign_in(transact, owner, "wrong guess", ATTACKER) == ("TOO_MANY_ATTEMPTS", 1)
    # and the recorded throttle key is the IPv4 address, an IPv6 one its /64
    assert auth.throttle_network(f"::ffff:{ATTACKER}") == ATTACKER
    assert auth.throttle_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert auth.throttle_network("testclient") == "testclient"


def _prefix(i: int) -> str:
    """An address in the i-th of many distinct /64s (a botnet, or an attacker with a /48)."""
    return f"2001:db8:{i // 0x10000:x}:{i % 0x10000:x}::1"


CEILING = auth.LoginPolicy(
    max_failures=5, window_minutes=15, max_delay_seconds=30.0, address_max_failures=12, username_max_failures=20
)


async def test_a_distributed_attack_on_one_username_is_slowed_but_not_the_owner_at_home(
    transact: Transactions, owner: str, clock: Clock
) -> None:
    async def attempt(password: str, address: str) -> tuple[str | None, int | None]:
        outcome = await auth.login(transact, owner, password, address=address, policy=CEILING)
        return (outcome.error.code if outcome.error else None), outcome.retry_after

    # given the owner signed in from home last week
    assert await attempt(PASSWORD, OWNER_ADDRESS) == (None, None)
    clock.now += timedelta(days=7)
    # and the username's ceiling of wrong passwords, each from a different /64 (no pair, no network
    # comes near its own limit)
    for i in range(CEILING.username_max_failures):
        assert await attempt(f"guess {i}", _prefix(i)) == ("UNAUTHENTICATED", None)
    # when a further /64 tries
    # then it waits, and each further failure from anywhere doubles the wait
    waits = []
    for i in range(100, 105):
        code, wait = await attempt("another guess", _prefix(i))
        assert code == "TOO_MANY_ATTEMPTS"
        waits.append(wait)
        clock.now += timedelta(seconds=wait or 0)
        assert await attempt("another guess", _prefix(i)) == ("UNAUTHENTICATED", None)
    assert waits == [1, 2, 4, 8, 16]
    # while the owner, from the network they signed in from, signs in at once
    assert await attempt(PASSWORD, OWNER_ADDRESS) == (None, None)
    # (and from a network they have never signed in from, they wait like anyone: that is the price)
    assert (await attempt(PASSWORD, "192.0.2.200"))[0] == "TOO_MANY_ATTEMPTS"


async def test_a_network_signed_in_from_long_ago_is_not_exempt(
    transact: Transactions, owner: str, clock: Clock
) -> None:
    # given the owner signed in from an address more than the remembered number of days ago
    assert (await auth.login(transact, owner, PASSWORD, address="192.0.2.9", policy=CEILING)).error is None
    clock.now += timedelta(days=CEILING.known_network_days, minutes=1)
    # and the username's ceiling of failures from many /64s
    for i in range(CEILING.username_max_failures):
        await auth.login(transact, owner, "guess", address=_prefix(i), policy=CEILING)
    # then that old network waits like anyone else
    outcome = await auth.login(transact, owner, PASSWORD, address="192.0.2.9", policy=CEILING)
    assert (outcome.error.code if outcome.error else None, outcome.retry_after) == ("TOO_MANY_ATTEMPTS", 1)


async def test_parallel_guesses_from_many_networks_cannot_outrun_the_username_count(
    ctx: ServiceContext, home_org: int, db_url: URL, clock: Clock, transact: Transactions
) -> None:
    """40 wrong attempts for one account, each from its own /64, admitted at the same instant, with the
    owner at home meanwhile: no more than the username's ceiling is admitted, and the owner."""
    attackers = 40
    policy = dataclasses.replace(CEILING, username_max_failures=10)

    async with Racer.open(db_url, workers=attackers + 1, clock=clock) as racer:
        for n in range(rounds(2)):
            username = f"target{n}"
            await auth.create_account(
                ctx, auth.AccountInput(username, "受害者", PASSWORD, Role.ORGANIZATION_ADMIN, home_org)
            )
            await ctx.session.commit()
            signed_in = await auth.login(transact, username, PASSWORD, address=OWNER_ADDRESS, policy=policy)
            assert signed_in.error is None

            async def admit(wctx: ServiceContext, i: int, username: str = username, n: int = n) -> str:
                address = OWNER_ADDRESS if i == attackers else _prefix(1000 * n + i)
                return await _admission(wctx, username, address, policy)

            outcomes = await racer.race(admit, viewer=Viewer())
            assert outcomes[attackers] == "admitted"  # the owner, at home
            # Admission counts an attempt as a failure until its password checks out, so the owner's
            # attempt, when admitted before the ceiling is reached, takes one of its places.
            assert set(outcomes[:attackers]) == {"admitted", "TOO_MANY_ATTEMPTS"}
            admitted = outcomes[:attackers].count("admitted")
            assert policy.username_max_failures - 1 <= admitted <= policy.username_max_failures
            clock.now += timedelta(minutes=policy.window_minutes + 1)
