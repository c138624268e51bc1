"""A stand-in for ``chord_core.slots.SlotPool`` until it lands (same interface).

n ChatSessions, each with its own KV cache, and a lock. ``acquire`` hands
out a free one, preferring the session whose cache holds the longest common
prefix of ``prompt_ids``, and raises ``SlotsBusyError`` at once when all
are busy. No batching: each session runs its own decode steps.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from ..errors import ChordError
from ..generator import common_prefix_len
from ..model import Model
from ..session import ChatSession


class SlotsBusyError(ChordError):
    pass


class SlotPool:
    def __init__(self, model: Model, n_slots: int, n_ctx: int | None = None, template_override: str | None = None,
                 model_name: str | None = None):
        self.model = model
        self.sessions = [ChatSession(model, n_ctx=n_ctx, template_override=template_override, model_name=model_name)
                         for _ in range(n_slots)]
        self._free = list(self.sessions)
        self._lock = threading.Lock()

    @contextmanager
    def acquire(self, prompt_ids: list[int] | None = None) -> Iterator[ChatSession]:
        with self._lock:
            if not self._free:
                raise SlotsBusyError(f"all {len(self.sessions)} slots are busy")
            ids = prompt_ids or []
            session = max(self._free, key=lambda s: common_prefix_len(s.cache.tokens, ids))
            self._free.remove(session)
        try:
            yield session
        finally:
            with self._lock:
                self._free.append(session)
