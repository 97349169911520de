"""Password hashing off the event loop, a few at a time.

An argon2id hash or verification costs ~0.3 s of CPU. Run on the event loop, every sign-in stalls every
other request for that long (50 anonymous sign-ins kept /healthz from answering for seconds). Here each
one runs in a worker thread (argon2-cffi releases the GIL while it hashes), at most `concurrency` at
once: with 2 cores, more parallel hashes only make each one slower. A caller that cannot get a slot
within `wait_seconds` gets `BUSY` instead of joining a queue that grows without bound under a flood.

`configure()` sets the cap for the process (the app calls it at startup from
settings.password_hash_concurrency); tests make a `PasswordWork` of their own to watch the cap work.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from core.errors import DomainError

T = TypeVar("T")

# Long enough to ride out a burst of honest sign-ins (each slot frees every ~0.3 s), short enough that a
# flood answers BUSY instead of holding its callers.
DEFAULT_WAIT_SECONDS = 5.0


class Busy(DomainError):
    """No hashing slot came free in time; `retry_after` (whole seconds) is when one likely will."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("BUSY", "The service is busy checking passwords; retry in a few seconds.")
        self.retry_after = retry_after


class PasswordWork:
    """Runs CPU-heavy password functions in threads, at most `concurrency` at once."""

    def __init__(self, concurrency: int = 2, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        if concurrency < 1:
            raise ValueError("password hashing needs a concurrency of at least 1")
        if not wait_seconds > 0:
            raise ValueError("the wait for a password hashing slot must be positive")
        self.concurrency = concurrency
        self.wait_seconds = wait_seconds
        # Its own threads: the cap holds even for work a cancelled caller left running (the thread
        # finishes its hash; the next job waits for it), and hashing never starves the default
        # executor that DNS lookups and other libraries use.
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="password")
        # One semaphore per event loop: asyncio primitives belong to the loop they were first used on,
        # and tests run a loop per test (a service runs one, so this holds one entry).
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.concurrency)
        return slots

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in a worker thread once a slot is free; `Busy` if none frees within the wait."""
        slots = self._semaphore()
        try:
            async with asyncio.timeout(self.wait_seconds):
                await slots.acquire()
        except TimeoutError:
            raise Busy(max(1, math.ceil(self.wait_seconds))) from None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            slots.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)


_work = PasswordWork()


def configure(concurrency: int, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
    """Set the process's cap (called at startup with settings.password_hash_concurrency)."""
    global _work
    if (concurrency, wait_seconds) == (_work.concurrency, _work.wait_seconds):
        return
    old, _work = _work, PasswordWork(concurrency, wait_seconds)
    old.shutdown()


def current() -> PasswordWork:
    return _work


async def run(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` under the process's cap (see PasswordWork.run)."""
    return await _work.run(fn, *args)
