"""Defects found by a QA pass over the running app, one test each; each
fails on the code before its fix."""

from __future__ import annotations

import threading

from fake_engine import DEFAULT_REPLY, FakeEngine, make_app, send, settle, split_tokens, start, stored, wait_until
from scripted_model import ScriptedModel
from textual.widgets import Input

from chord_core.events import Done, TokenEvent
from chord_core.sampling import SamplerSettings
from chord_core.session import ChatSession
from chord_tui.config import AppConfig
from chord_tui.screens.chat_session import ChatSession as ChatState
from chord_tui.storage import ConversationStore
from chord_tui.widgets.message_view import MessageView
from chord_tui.widgets.setting_slider import SettingSlider
from chord_tui.widgets.token_view import TokenView

SIZE = (120, 40)


async def test_top_k_slider_at_off_means_no_top_k_not_a_crash(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        setting = app.chat.query_one("#setting-top-k", SettingSlider)
        setting.slider.focus()
        for _ in range(45):  # 40 -> 0, the "off" end
            await pilot.press("left")
        await pilot.pause()
        assert app.is_running
        assert app.live_settings.snapshot().top_k == 0
        assert str(setting.query_one(".setting-value").render()) == "off"


async def test_the_seed_field_takes_digits_only(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.chat.query_one("#seed", Input).focus()
        await pilot.press("-", "5")
        await pilot.pause()
        assert app.is_running
        assert app.chat.query_one("#seed", Input).value == "5"
        assert app.live_settings.snapshot().seed == 5


async def test_a_refused_setting_is_reported_not_fatal(tmp_path):
    from chord_tui.messages import SettingChanged

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.post_message(SettingChanged("top_k", None))  # what the slider sent for "off" before
        await pilot.pause()
        assert app.is_running
        assert any("top_k" in n.message for n in app._notifications)


async def test_sliders_show_the_configured_value_even_off_their_steps(tmp_path):
    settings = SamplerSettings(top_k=250, max_tokens=20, temperature=0.33)
    config = AppConfig(path=tmp_path / "config.toml", sampler=settings)
    app = make_app(tmp_path, config=config)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        shown = {key: str(app.chat.query_one(f"#setting-{key}", SettingSlider).query_one(".setting-value").render())
                 for key in ("top-k", "max-tokens", "temperature")}
        assert shown == {"top-k": "250", "max-tokens": "20", "temperature": "0.33"}
        assert app.live_settings.snapshot() == settings


async def test_closing_the_app_mid_reply_records_it_as_stopped(tmp_path):
    engine = FakeEngine(gated=True)
    store = ConversationStore(tmp_path / "conversations.db")
    app = make_app(tmp_path, engine, store=store)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "tell me")
        engine.release(3)
        await wait_until(pilot, lambda: len(app.chat.session.generation.tokens) == 3)
        conv = app.chat.session.conversation_id
    engine.release(100)  # the engine thread may still be waiting for its gate
    reply = store.load(conv).messages[-1]
    assert reply.content == "".join(split_tokens(DEFAULT_REPLY)[:3])
    assert reply.record["finish_reason"] == "cancelled"
    assert reply.record["finish_note"] == "stopped"
    assert len(reply.record["tokens"]) == 3


async def test_the_inspector_forgets_a_selection_when_the_reply_changes(tmp_path):
    engine = FakeEngine(replies=["one two three four five six", "short reply"])
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("ctrl+t")
        await send(app, pilot, "q")
        await settle(app, pilot)
        view = app.chat.query(MessageView).last()
        view.query_one(TokenView).action_jump(-1)
        await pilot.pause()
        assert "token 6" in view.alternatives_text()
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        view = app.chat.query(MessageView).last()
        assert view.content == "short reply"
        assert view.query_one(TokenView).cursor == -1
        assert "token 6" not in view.alternatives_text()


def test_an_empty_reply_is_not_sent_back_to_the_model(tmp_path):
    store = ConversationStore(tmp_path / "c.db")
    state = ChatState(store)
    gen = state.send("first question")
    state.finish(gen, None, error="engine error: boom")  # nothing arrived
    gen = state.send("second question")
    assert gen.messages == [{"role": "user", "content": "first question\n\nsecond question"}]
    store.close()


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


async def test_reopening_a_conversation_shows_the_context_it_uses(tmp_path):
    app = make_app(tmp_path, FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "hello")
        await settle(app, pilot)
        first = app.chat.session.conversation_id
        used = stored(app)[-1].record["stats"]["n_past"]
        assert used > 0
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert " 0/2048" in app.chat.status.text()
        await app.chat.open_conversation(first)
        await pilot.pause()
        assert f" {used}/2048" in app.chat.status.text()


async def test_regenerate_with_a_fixed_seed_says_why_the_reply_repeats(tmp_path):
    app = make_app(tmp_path, FakeEngine(replies=["same", "same"]))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.chat.query_one("#seed", Input).focus()
        await pilot.press("7")
        await send(app, pilot, "q")
        await settle(app, pilot)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert any("seed is fixed at 7" in n.message for n in app._notifications)
