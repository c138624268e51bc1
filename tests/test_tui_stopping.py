"""Stopping a reply: Esc during the prompt or the reply, and closing the app mid-reply."""

from __future__ import annotations

import threading

from fake_engine import DEFAULT_REPLY, FakeEngine, make_app, send, settle, split_tokens, start, wait_until
from scripted_model import ScriptedModel

from chord_core.events import Done, TokenEvent
from chord_core.sampling import SamplerSettings
from chord_core.session import ChatSession
from chord_tui.storage import ConversationStore

SIZE = (120, 40)


async def test_closing_the_app_mid_reply_records_it_as_stopped(tmp_path):
    engine = FakeEngine(gated=True)
    store = ConversationStore(tmp_path / "conversations.db")
    app = make_app(tmp_path, engine, store=store)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "tell me")
        engine.release(3)
        await wait_until(pilot, lambda: len(app.chat.state.generation.tokens) == 3)
        conv = app.chat.state.conversation_id
    engine.release(100)  # the engine thread may still be waiting for its gate
    reply = store.load(conv).messages[-1]
    assert reply.content == "".join(split_tokens(DEFAULT_REPLY)[:3])
    assert reply.record["finish_reason"] == "cancelled"
    assert reply.record["finish_note"] == "stopped"
    assert len(reply.record["tokens"]) == 3


def test_stop_lands_during_a_long_prompt(smollm_path):
    """Esc while a long prompt is evaluated: the prefill stops at the next chunk."""
    model = ScriptedModel(smollm_path, [], n_ctx=4096)
    cancel = threading.Event()
    real_eval = model.eval

    def eval_then_cancel(ids, cache, all_logits=False):
        out = real_eval(ids, cache, all_logits)
        cancel.set()  # the user presses Esc during the first chunk
        return out

    model.eval = eval_then_cancel
    session = ChatSession(model)
    events = list(session.stream([{"role": "user", "content": "word " * 1000}],
                                 SamplerSettings(temperature=0), cancel))
    done = [e for e in events if isinstance(e, Done)]
    assert done and done[0].reason == "cancelled"
    assert not any(isinstance(e, TokenEvent) for e in events)
    # one chunk was evaluated, not the whole prompt
    prompt_len = len(session.prompt_ids([{"role": "user", "content": "word " * 1000}], False))
    assert prompt_len > 1000
    assert len(model.eval_calls) == 1 and len(model.eval_calls[0]) <= 128


async def test_a_reply_stopped_before_its_first_token_shows_no_rates(tmp_path):
    engine = FakeEngine(gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "tell me")
        await wait_until(pilot, lambda: engine.streaming.is_set())
        await pilot.press("escape")
        engine.release(1)
        await settle(app, pilot)
        text = app.chat.status.text()
        assert "stopped" in text and "tok/s" not in text and "ttft" not in text
