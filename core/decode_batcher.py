"""DecodeBatcher: the one-token decode steps of several sessions as one forward.

Each session generates on its own thread with its own plain decode loop
(generator.py); where that loop would evaluate one token it calls
``decode(token, cache)``. The batcher is a rendezvous: a cache's first step
makes it a member, and a step runs once every member has submitted one, as
one ``Model.eval_batch`` over all of them. Decode streams every weight once
per step, so B rows cost about what one does.

Whichever thread completes the batch runs the forward; the others each
wait on a lock of their own step, which the runner releases once their row
is in (a thread wakes straight into its result, with no shared condition
for the woken to queue on again). A member that stops decoding
(its reply ended, was cancelled or failed, or it has a prompt to evaluate)
calls ``leave(cache)`` at once, so the others never wait on a session that
is not decoding, and a session evaluating its prompt is not a member yet;
when a leave (or the end of a forward) completes the next batch, one of
its waiting threads is handed that batch to run.
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
    """One member's submitted token, and what the batch gave it. ``ready`` is
    held from the start: released once the step is done, or once its thread
    is handed ``batch`` to run."""

    __slots__ = ("token", "cache", "logits", "error", "batch", "ready")

    def __init__(self, token: int, cache: KVCache):
        self.token = token
        self.cache = cache
        self.logits: np.ndarray | None = None
        self.error: BaseException | None = None
        self.batch: list[_Step] | None = None
        self.ready = threading.Lock()
        self.ready.acquire()


class DecodeBatcher:
    def __init__(self, model: Model):
        self.model = model
        self._lock = threading.Lock()
        self._members: set[KVCache] = set()  # the caches in decode (hashed by identity)
        self._waiting: list[_Step] = []  # steps submitted for the next batch
        self._running = False
        self.batches = 0  # forwards run, and the rows they held: how well steps were shared
        self.rows = 0

    @property
    def n_members(self) -> int:
        with self._lock:
            return len(self._members)

    def join(self, cache: KVCache) -> None:
        """Make ``cache`` a member now: no batch runs without its step until it
        leaves. ``decode`` joins on its own; joining first fixes who shares a batch."""
        with self._lock:
            self._members.add(cache)

    def decode(self, token: int, cache: KVCache) -> np.ndarray:
        """Append ``token`` to ``cache`` in the next batch; the logits after it."""
        cache.reserve(cache.n_past + 1)  # a full cache fails its own caller, never the batch
        step = _Step(int(token), cache)
        with self._lock:
            self._members.add(cache)
            self._waiting.append(step)
            batch = self._take_complete()
        if batch is None:
            step.ready.acquire()  # done, or handed a batch (which holds this step) to run
            batch, step.batch = step.batch, None
        if batch is not None:
            self._run(batch)
        if step.error is not None:
            raise step.error
        return step.logits

    def leave(self, cache: KVCache) -> None:
        """``cache`` decodes no more for now (a no-op if it is not a member)."""
        with self._lock:
            self._members.discard(cache)
            batch = self._take_complete()  # the batch may be complete without it
        _hand_off(batch)

    def _take_complete(self) -> list[_Step] | None:
        """Under the lock: the waiting steps, if they are every member's and no
        forward runs (then one is running from now on)."""
        # only a member's own thread submits or leaves, so a waiting step's
        # cache is a member: every member has submitted when the counts agree
        if self._running or not self._waiting or len(self._waiting) != len(self._members):
            return None
        batch, self._waiting = self._waiting, []
        self._running = True
        return batch

    def _run(self, batch: list[_Step]) -> None:
        logits, error = None, None
        try:
            logits = self.model.eval_batch([s.token for s in batch], [s.cache for s in batch])
        except BaseException as err:  # every caller of this step hears of it, then the batch goes on
            error = err
        for i, s in enumerate(batch):
            s.logits = logits[i] if logits is not None else None
            s.error = error
        with self._lock:
            self._running = False
            self.batches += 1
            self.rows += len(batch)
            after = self._take_complete()  # members that joined meanwhile may have completed one
        for s in batch:
            s.ready.release()  # the runner's own step too: nobody waits on it, it is dropped
        _hand_off(after)


def _hand_off(batch: list[_Step] | None) -> None:
    """Wake one waiting thread of ``batch`` to run it."""
    if batch is not None:
        batch[0].batch = batch
        batch[0].ready.release()
