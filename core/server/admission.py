"""How many requests generate at once, and how many may wait their turn.

A request takes a permit (one per slot) before its job starts and gives it
back when the job has let go of its slot. While none is free it waits, first
come first served, up to ``queue`` requests; past that it is refused at once
with 429, as llama-server, Ollama and vLLM queue and OpenAI rate-limits.
A waiting request whose client leaves still takes its turn, but its job
starts cancelled and ends before prefilling anything.
"""

from __future__ import annotations

import asyncio

from .errors import ApiError

DEFAULT_QUEUE = 32


class Admission:
    def __init__(self, slots: int, queue: int = DEFAULT_QUEUE):
        self.slots = slots
        self.queue = queue
        self._permits = asyncio.Semaphore(slots)
        self._waiting = 0

    async def enter(self) -> None:
        if self._permits.locked() and self._waiting >= self.queue:
            raise ApiError(429, f"all {self.slots} slots are busy and {self._waiting} requests are waiting "
                                f"already (--parallel {self.slots}, --queue {self.queue}); try again shortly",
                           code="slots_busy", headers={"Retry-After": "1"})
        self._waiting += 1
        try:
            await self._permits.acquire()
        finally:
            self._waiting -= 1

    def leave(self) -> None:
        self._permits.release()
