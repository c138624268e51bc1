"""chord-chat serve with one slot guesses ahead like run; several slots batch instead."""

from __future__ import annotations

from chord_core.drafters import Speculation
from chord_core.slots import SlotPool
from server_harness import chat, serving, smollm

# an input-grounded request: the reply copies the prompt, so lookup has guesses to check
COPY = "Repeat exactly: the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy dog."


def _reply(pool: SlotPool) -> dict:
    with serving(pool) as server:
        status, _, body = server.post("/v1/chat/completions", chat(COPY, temperature=0, max_tokens=24))
    assert status == 200, body
    return body


def test_one_slot_with_prompt_lookup_gives_the_plain_tokens_and_reports_its_guesses():
    model = smollm()
    plain = _reply(SlotPool(model, 1, n_ctx=512))
    guessing = _reply(SlotPool(model, 1, n_ctx=512, speculation=Speculation(lookup=3)))
    assert guessing["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
    assert plain["timings"]["draft_n"] == 0
    assert guessing["timings"]["draft_n"] > 0
    assert 0 <= guessing["timings"]["draft_n_accepted"] <= guessing["timings"]["draft_n"]


def test_several_slots_batch_their_steps_and_do_not_guess():
    pool = SlotPool(smollm(), 2, n_ctx=512, speculation=Speculation(lookup=3))
    assert pool.batcher is not None
    assert _reply(pool)["timings"]["draft_n"] == 0


def test_a_single_slot_has_no_batcher_to_wait_on():
    assert SlotPool(smollm(), 1, n_ctx=512).batcher is None
