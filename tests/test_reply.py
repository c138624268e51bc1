"""Reply: a stream of events seen as text pieces, then a result."""

from __future__ import annotations

import threading

import pytest

from chord_core import ChatSession, ChordError, Done, ErrorEvent, Model, Notice, Reply, SamplerSettings, Started, Stats, TokenEvent

STATS = Stats(prompt_tokens=3, prefill_tok_s=1.0, decode_tok_s=1.0, ttft_s=0.1, generated=2, n_past=5, n_ctx=64)


def scripted(*events):
    yield from events


def done(text: str) -> Done:
    return Done(reason="stop", text=text, token_ids=(1, 2), stats=STATS)


def test_iterating_yields_the_text_of_each_token_and_keeps_notices():
    reply = Reply(scripted(Started(3, 0, 64), Notice("context full"), TokenEvent(1, "a", "a", 0.5), STATS,
                           TokenEvent(2, "b", "b", 0.5), STATS, done("ab")))
    assert list(reply) == ["a", "b"]
    assert reply.notices == ["context full"]
    assert reply.result.text == "ab" and reply.result.token_ids == (1, 2)


def test_result_before_the_end_generates_the_rest():
    reply = Reply(scripted(TokenEvent(1, "a", "a", 0.5), TokenEvent(2, "b", "b", 0.5), done("ab")))
    assert next(reply) == "a"
    assert reply.text == "ab"
    assert list(reply) == []


def test_an_error_event_is_raised_as_a_one_line_chord_error():
    reply = Reply(scripted(TokenEvent(1, "a", "a", 0.5), ErrorEvent("the message is too long for the context")))
    assert next(reply) == "a"
    with pytest.raises(ChordError, match="too long for the context"):
        next(reply)


def test_a_closed_reply_has_no_result():
    reply = Reply(scripted(TokenEvent(1, "a", "a", 0.5), done("a")))
    reply.close()
    with pytest.raises(ChordError, match="closed before it finished"):
        reply.result


def test_cancel_without_a_cancel_event_says_so():
    with pytest.raises(ChordError, match="cannot be cancelled"):
        Reply(scripted()).cancel()


@pytest.fixture(scope="module")
def smollm(smollm_path):
    return Model.load(smollm_path)


def test_a_reply_left_early_and_closed_frees_the_session(smollm):
    session = ChatSession(smollm)
    msgs = [{"role": "user", "content": "Hi"}]
    with session.chat(msgs, SamplerSettings(seed=1, max_tokens=20)) as reply:
        next(reply)
    again = session.chat(msgs, SamplerSettings(seed=1, max_tokens=3))
    assert len(again.result.token_ids) == 3  # not "already generating a reply"


def test_cancel_from_another_thread_ends_the_reply_as_cancelled(smollm):
    session = ChatSession(smollm)
    reply = session.chat([{"role": "user", "content": "Count to a hundred."}], SamplerSettings(seed=1, max_tokens=400))
    first = threading.Event()

    def stop_after_first_token():
        first.wait(timeout=60)
        reply.cancel()

    stopper = threading.Thread(target=stop_after_first_token)
    stopper.start()
    next(reply)
    first.set()
    stopper.join(timeout=60)
    assert reply.result.reason == "cancelled"
    assert len(reply.result.token_ids) < 400
