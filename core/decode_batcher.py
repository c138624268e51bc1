"""DecodeBatcher: the one-token decode steps of several sessions as one forward.

Each session generates on its own thread with its own plain decode loop
(generator.py); where that loop would evaluate one token it calls
``decode(token, cache)``. The batcher is a rendezvous: a cache's first step
makes it a member, and a step runs once every member has submitted one, as
one ``Model.eval_batch`` over all of them. Decode streams every weight once
per step, so B rows cost about what one does.

Whichever waiting thread finds the batch complete runs the forward; the
others wait on a condition and take their row. A member that stops decoding
(its reply ended, was cancelled or failed, or it has a prompt to evaluate)
calls ``leave(cache)`` at once, so the others never wait on a session that
is not decoding, and a session evaluating its prompt is not a member yet.
An exception in the batched forward reaches every caller of that step.

Each member decodes on its own thread: a thread holding two members would
wait on itself.
"""

from __future__ import annotations

import threading

import numpy as np

from .kv_cache import KVCache
from .model import Model


class _Step:
    """One member's submitted token, and what the batch gave it."""

    __slots__ = ("token", "cache", "logits", "error", "done")

    def __init__(self, token: int, cache: KVCache):
        self.token = token
        self.cache = cache
        self.logits: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


class DecodeBatcher:
    def __init__(self, model: Model):
        self.model = model
        self._cond = threading.Condition()
        self._members: set[KVCache] = set()  # the caches in decode (hashed by identity)
        self._waiting: list[_Step] = []  # steps submitted for the next batch
        self._running = False
        self.batches = 0  # forwards run, and the rows they held: how well steps were shared
        self.rows = 0

    @property
    def n_members(self) -> int:
        with self._cond:
            return len(self._members)

    def join(self, cache: KVCache) -> None:
        """Make ``cache`` a member now: no batch runs without its step until it
        leaves. ``decode`` joins on its own; joining first fixes who shares a batch."""
        with self._cond:
            self._members.add(cache)

    def decode(self, token: int, cache: KVCache) -> np.ndarray:
        """Append ``token`` to ``cache`` in the next batch; the logits after it."""
        cache.reserve(cache.n_past + 1)  # a full cache fails its own caller, never the batch
        step = _Step(int(token), cache)
        with self._cond:
            self._members.add(cache)
            self._waiting.append(step)
            batch = self._wait_for(step)
        if batch is not None:
            self._run(batch)
        if step.error is not None:
            raise step.error
        return step.logits

    def leave(self, cache: KVCache) -> None:
        """``cache`` decodes no more for now (a no-op if it is not a member)."""
        with self._cond:
            self._members.discard(cache)
            self._cond.notify_all()  # the batch may be complete without it

    def _wait_for(self, step: _Step) -> list[_Step] | None:
        """Under the lock: None once ``step`` is done, or the batch to run
        when this thread finds every member's step submitted."""
        while not step.done:
            # only a member's own thread submits or leaves, so a waiting step's
            # cache is a member: every member has submitted when the counts agree
            if not self._running and len(self._waiting) == len(self._members):
                batch, self._waiting = self._waiting, []
                self._running = True
                return batch
            self._cond.wait()
        return None

    def _run(self, batch: list[_Step]) -> None:
        logits, error = None, None
        try:
            logits = self.model.eval_batch([s.token for s in batch], [s.cache for s in batch])
        except BaseException as err:  # every caller of this step hears of it, then the batch goes on
            error = err
        with self._cond:
            for i, s in enumerate(batch):
                s.logits = logits[i] if logits is not None else None
                s.error = error
                s.done = True
            self._running = False
            self.batches += 1
            self.rows += len(batch)
            self._cond.notify_all()
