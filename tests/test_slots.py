"""SlotPool: a free session per request, the one holding the prompt's
longest prefix first; a clear error when every slot is busy."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from chord_core.errors import ChordError
from chord_core.events import Done, Started
from chord_core.model import Model
from chord_core.sampling import SamplerSettings
from chord_core.slots import SlotPool, SlotsBusyError

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
JOIN_S = 120


@pytest.fixture(scope="module")
def tiny():
    return Model.load(TINY / "tiny-llama-Q4_K_M.gguf", backend="numpy")


def _fill(pool: SlotPool, contents: list[list[int]]) -> None:
    for session, ids in zip(pool.sessions, contents):
        if ids:
            pool.model.eval(ids, session.cache)


def test_acquire_prefers_the_slot_holding_the_longest_common_prefix(tiny):
    pool = SlotPool(tiny, 3, n_ctx=64)
    _fill(pool, [[5, 6, 7], [5, 6, 7, 8, 9], [5, 9]])
    with pool.acquire([5, 6, 7, 8, 10, 11]) as session:
        assert session is pool.sessions[1]
        with pool.acquire([5, 6, 7, 8, 10, 11]) as second:  # the best one is taken: the next best
            assert second is pool.sessions[0]


def test_among_equal_prefixes_acquire_takes_the_slot_free_longest(tiny):
    pool = SlotPool(tiny, 3, n_ctx=64)
    with pool.acquire() as a:
        pass
    with pool.acquire([42]) as b:  # no cache holds 42: the least recently used, not the one just released
        assert b is not a


def test_acquire_when_every_slot_is_busy_raises_at_once(tiny):
    pool = SlotPool(tiny, 2, n_ctx=64)
    with pool.acquire(), pool.acquire():
        assert pool.n_free == 0
        with pytest.raises(SlotsBusyError, match="all 2 slots are busy"):
            with pool.acquire():
                pass
    assert pool.n_free == 2


def test_a_slot_is_released_even_when_its_block_fails(tiny):
    pool = SlotPool(tiny, 1, n_ctx=64)
    with pytest.raises(RuntimeError):
        with pool.acquire():
            raise RuntimeError("client went away")
    with pool.acquire() as session:
        assert session is pool.sessions[0]


def test_acquire_with_a_timeout_waits_for_a_release(tiny):
    pool = SlotPool(tiny, 1, n_ctx=64)
    got = []

    def wait_for_a_slot():
        with pool.acquire(timeout=JOIN_S) as session:
            got.append(session)

    with pool.acquire() as held:
        waiter = threading.Thread(target=wait_for_a_slot, daemon=True)
        waiter.start()
    waiter.join(JOIN_S)
    assert got == [held]


def test_a_pool_needs_a_slot(tiny):
    with pytest.raises(ChordError, match="at least one slot"):
        SlotPool(tiny, 0)


def test_every_slot_shares_the_pools_batcher_and_template(tiny):
    pool = SlotPool(tiny, 3, n_ctx=64)
    assert {s.generator.batcher for s in pool.sessions} == {pool.batcher}
    assert len({id(s.template) for s in pool.sessions}) == 1
    assert len({id(s.cache) for s in pool.sessions}) == 3


def test_a_follow_up_turn_reuses_its_slots_cache(smollm_path):
    model = Model.load(smollm_path, backend="cpu", threads=2)
    pool = SlotPool(model, 2, n_ctx=256)
    settings = SamplerSettings(temperature=0, max_tokens=4)
    first = [{"role": "user", "content": "Hello there!"}]
    with pool.acquire(pool.sessions[0].prompt_ids(first)) as session:
        reply = [e for e in session.stream(first, settings) if isinstance(e, Done)][0]
    follow_up = first + [{"role": "assistant", "content": reply.text}, {"role": "user", "content": "And now?"}]
    # the other slot was free longer, but this one holds the conversation
    with pool.acquire(pool.sessions[0].prompt_ids(follow_up)) as again:
        assert again is session
        started = [e for e in again.stream(follow_up, settings) if isinstance(e, Started)][0]
    assert started.reused_tokens > 0
