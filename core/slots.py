"""SlotPool: n chat sessions that generate at once, sharing each decode step.

Each slot is a ChatSession with its own KV cache; all of them share one
DecodeBatcher, so the decode steps of the slots generating at the same time
run as one batched forward. ``acquire`` hands out a free slot for the
length of a ``with`` block, preferring the one whose cache holds the
longest common prefix of the coming prompt (a client's follow-up turn then
evaluates only its new tail), else the one free the longest; when none is
free it raises ``SlotsBusyError`` (at once, or after ``timeout`` seconds) so
a server can answer 429/503 instead of queueing without bound.

Each acquired session must generate on its own thread (the batcher waits for
every decoding slot's step, see decode_batcher.py).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from .chat_template import ChatTemplate
from .decode_batcher import DecodeBatcher
from .errors import ChordError
from .generator import common_prefix_len
from .model import Model
from .session import ChatSession


class SlotsBusyError(ChordError):
    """Every slot is generating."""


class SlotPool:
    def __init__(self, model: Model, n_slots: int, n_ctx: int | None = None, template: ChatTemplate | None = None,
                 template_override: str | None = None, model_name: str | None = None,
                 speculation: Speculation | None = None):
        """``speculation``: how a lone slot guesses ahead (drafters.py). Several
        slots batch their decode steps instead, one token each, and a batched
        session decodes plainly (generator.py), so it only applies to one slot."""
        if n_slots < 1:
            raise ChordError(f"a slot pool needs at least one slot, not {n_slots}")
        self.model = model
        self.batcher = DecodeBatcher(model) if n_slots > 1 else None
        first = ChatSession(model, template, n_ctx, template_override, model_name, batcher=self.batcher,
                            speculation=speculation)
        # one template for every slot: it is compiled and checked once
        self.sessions = [first] + [ChatSession(model, first.template, n_ctx, model_name=model_name,
                                               batcher=self.batcher) for _ in range(n_slots - 1)]
        self._free = list(self.sessions)  # the one released longest ago first
        self._cond = threading.Condition()

    @property
    def n_free(self) -> int:
        with self._cond:
            return len(self._free)

    @contextmanager
    def acquire(self, prompt_ids: list[int] | None = None, timeout: float | None = None) -> Iterator[ChatSession]:
        """A free session for the ``with`` block; ``SlotsBusyError`` if none is
        free now (``timeout`` None) or within ``timeout`` seconds."""
        session = self._take(prompt_ids or [], timeout)
        try:
            yield session
        finally:
            with self._cond:
                self._free.append(session)
                self._cond.notify()

    def _take(self, ids: list[int], timeout: float | None) -> ChatSession:
        with self._cond:
            if not self._cond.wait_for(lambda: self._free, timeout=timeout or 0):
                raise SlotsBusyError(f"all {len(self.sessions)} slots are busy")
            # longest common prefix first; among equals, the one released longest ago
            best = max(range(len(self._free)),
                       key=lambda i: (common_prefix_len(self._free[i].cache.tokens, ids), -i))
            return self._free.pop(best)
