"""Proof that work ran off the event loop, without comparing clocks.

`LoopWatchingHasher` is a real argon2id hasher whose every verification first waits until the event loop has
moved on (a coroutine under `ticking()` counts its turns). In a worker thread the loop turns while the
verification waits, and it records True. On the event loop itself the loop cannot turn until the
verification returns: it gives up after `patience` and records False. A loaded machine makes it slower,
never wrong (the timing versions of this test failed in CI when a busy machine stalled the loop anyway).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from argon2 import PasswordHasher


class LoopWatchingHasher(PasswordHasher):
    def __init__(self, patience: float = 5.0) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.patience = patience
        self.loop_moved: list[bool] = []
        self._turns = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        seen = self._turns
        deadline = time.monotonic() + self.patience
        while self._turns < seen + 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        with self._lock:
            self.loop_moved.append(self._turns >= seen + 2)
        return super().verify(hash, password)

    @asynccontextmanager
    async def ticking(self) -> AsyncIterator[None]:
        """Count the event loop's turns while the block runs."""
        done = asyncio.Event()

        async def tick() -> None:
            while not done.is_set():
                self._turns += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        try:
            yield
        finally:
            done.set()
            await ticker
