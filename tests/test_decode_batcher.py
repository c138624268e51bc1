"""DecodeBatcher: sessions on their own threads share each decode step.

A step runs once every member has submitted one, as one batched forward;
a member that stops decoding (done, cancelled, its stream closed) leaves at
once so the others go on; an error in the forward reaches every caller.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from chord_core.decode_batcher import DecodeBatcher
from chord_core.events import Done, ErrorEvent, TokenEvent
from chord_core.model import Model
from chord_core.sampling import SamplerSettings
from chord_core.session import ChatSession

JOIN_S = 120  # generous bound on a thread that should end; a hang fails instead of blocking CI
GREEDY = SamplerSettings(temperature=0, max_tokens=16)
QUESTIONS = ["What is the capital of France?", "Write a haiku about the sea.", "Name three prime numbers."]


class _Cache:
    """What the batcher touches of a KV cache."""

    def __init__(self):
        self.tokens: list[int] = []

    @property
    def n_past(self) -> int:
        return len(self.tokens)

    def reserve(self, n: int) -> None:
        pass


class _RecordingModel:
    """eval_batch appends the tokens and returns each row's token as its logits."""

    def __init__(self, error: Exception | None = None):
        self.error = error
        self.batches: list[list[int]] = []

    def eval_batch(self, ids, caches):
        self.batches.append(list(ids))
        if self.error is not None:
            raise self.error
        for c, t in zip(caches, ids):
            c.tokens.append(t)
        return np.array([[float(t)] for t in ids], np.float32)


def _in_threads(fn, args_list):
    results: list = [None] * len(args_list)

    def run(i, args):
        try:
            results[i] = fn(*args)
        except Exception as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i, a), daemon=True) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_S)
    assert not any(t.is_alive() for t in threads), "a decode step never came back"
    return results


# -- the rendezvous, on a recording model ---------------------------------------------

def test_members_steps_run_as_one_forward_and_each_gets_its_row():
    model = _RecordingModel()
    batcher = DecodeBatcher(model)
    caches = [_Cache() for _ in range(3)]
    for c in caches:
        batcher.join(c)
    rows = _in_threads(batcher.decode, [(10 + i, c) for i, c in enumerate(caches)])
    assert [len(b) for b in model.batches] == [3]
    assert [float(r[0]) for r in rows] == [10.0, 11.0, 12.0]
    assert [c.tokens for c in caches] == [[10], [11], [12]]


def test_a_lone_member_decodes_at_once():
    model = _RecordingModel()
    batcher = DecodeBatcher(model)
    cache = _Cache()
    assert float(batcher.decode(7, cache)[0]) == 7.0
    batcher.leave(cache)
    assert batcher.n_members == 0 and model.batches == [[7]]


def test_a_member_that_leaves_no_longer_holds_the_others_up():
    model = _RecordingModel()
    batcher = DecodeBatcher(model)
    idle, busy = _Cache(), _Cache()
    batcher.join(idle)
    batcher.join(busy)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (batcher.decode(5, busy), done.set()), daemon=True)
    thread.start()
    batcher.leave(idle)
    assert done.wait(JOIN_S)
    assert model.batches == [[5]] and idle.tokens == []


def test_an_error_in_the_batched_forward_reaches_every_caller():
    model = _RecordingModel(error=RuntimeError("kernel failed"))
    batcher = DecodeBatcher(model)
    caches = [_Cache() for _ in range(3)]
    for c in caches:
        batcher.join(c)
    results = _in_threads(batcher.decode, [(1, c) for c in caches])
    assert all(isinstance(r, RuntimeError) and str(r) == "kernel failed" for r in results)
    assert [len(b) for b in model.batches] == [3]
    # the batcher goes on: the next step runs
    model.error = None
    assert [float(r[0]) for r in _in_threads(batcher.decode, [(2, c) for c in caches])] == [2.0] * 3


# -- sessions on SmolLM2 ------------------------------------------------------------------

@pytest.fixture(scope="module")
def smol(smollm_path):
    return Model.load(smollm_path, backend="cpu", threads=2)


def _messages(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


def _alone(model: Model, question: str) -> tuple[int, ...]:
    events = list(ChatSession(model, n_ctx=256).stream(_messages(question), GREEDY))
    return next(e for e in events if isinstance(e, Done)).token_ids


def _batched_replies(model: Model, stop_third_after: int | None = None, stop_by: str = "cancel"):
    """Each question on its own thread and session, all sharing one batcher;
    the third session stops after ``stop_third_after`` tokens, by cancel or
    by closing its stream (a client gone). Returns (last events, batcher)."""
    batcher = DecodeBatcher(model)
    sessions = [ChatSession(model, n_ctx=256, batcher=batcher) for _ in QUESTIONS]

    def reply(i: int):
        cancel = threading.Event()
        events = sessions[i].stream(_messages(QUESTIONS[i]), GREEDY, cancel)
        n_tokens, last = 0, None
        for last in events:
            if isinstance(last, TokenEvent):
                n_tokens += 1
                if i == 2 and n_tokens == stop_third_after:
                    if stop_by == "close":
                        events.close()
                        return "closed"
                    cancel.set()
        return last

    return _in_threads(reply, [(i,) for i in range(len(QUESTIONS))]), batcher


def test_sessions_decoding_together_give_the_ids_each_gives_alone(smol):
    alone = [_alone(smol, q) for q in QUESTIONS]
    finals, batcher = _batched_replies(smol)
    assert all(isinstance(f, Done) for f in finals), finals
    assert [f.token_ids for f in finals] == alone
    assert batcher.n_members == 0


@pytest.mark.parametrize("stop_by", ["cancel", "close"])
def test_a_session_stopped_mid_reply_lets_the_others_finish(smol, stop_by):
    alone = [_alone(smol, q) for q in QUESTIONS[:2]]
    finals, batcher = _batched_replies(smol, stop_third_after=3, stop_by=stop_by)
    assert [f.token_ids for f in finals[:2]] == alone
    if stop_by == "cancel":
        assert isinstance(finals[2], Done) and finals[2].reason == "cancelled"
    else:
        assert finals[2] == "closed"
    assert batcher.n_members == 0


def test_a_failing_batch_ends_the_session_with_an_error(smol):
    batcher = DecodeBatcher(_RecordingModel(error=MemoryError("out of memory")))
    session = ChatSession(smol, n_ctx=256, batcher=batcher)
    events = list(session.stream(_messages(QUESTIONS[0]), GREEDY))
    assert isinstance(events[-1], ErrorEvent) and "out of memory" in events[-1].message
    assert batcher.n_members == 0
