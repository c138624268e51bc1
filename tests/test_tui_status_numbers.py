"""Numbers that must not mislead: the prompt's cached and new tokens, rates
only over work actually done, the backend in use, and F3 showing exactly
what the next request sends."""

from __future__ import annotations

from fake_engine import FakeEngine, fake_pieces, fake_render, make_app, send, settle, wait_until

from chord_core.events import Stats
from chord_tui.screens.prompt_view import PromptScreen
from chord_tui.widgets.status_bar import StatusBar

SIZE = (160, 40)
QUESTION = " ".join(f"word{i}" for i in range(40))  # 40 tokens + 4 of the template: 44 in the fake


def test_a_prefill_of_a_few_tokens_has_no_rate_and_cached_tokens_are_counted():
    bar = StatusBar(lambda: 0.0)
    bar.refresh_text = lambda: None  # not mounted
    bar.reply_started(prompt_tokens=221, n_ctx=2048, reused_tokens=220)
    bar.reply_finished("stop", Stats(221, 1.0, 30.0, 0.9, 5, 226, 2048))
    assert "30.0 tok/s · prompt 221 (220 cached) · ttft 0.90s" in bar.text()
    bar.reply_started(prompt_tokens=221, n_ctx=2048, reused_tokens=21)
    bar.reply_finished("stop", Stats(221, 400.0, 30.0, 0.5, 5, 226, 2048))
    assert "prompt 221 (21 cached) · prefill 400 tok/s" in bar.text()
    bar.reply_started(prompt_tokens=221, n_ctx=2048)
    bar.reply_finished("stop", Stats(221, 400.0, 0.0, 0.5, 1, 222, 2048))  # one token: no decode step
    assert "0.0 tok/s" not in bar.text() and "prompt 221 · prefill 400 tok/s" in bar.text()


async def test_after_a_regenerate_the_status_shows_the_cached_prompt_and_no_prefill_rate(tmp_path):
    engine = FakeEngine(replies=["one two three", "four five six"])
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, QUESTION)
        await settle(app, pilot)
        assert "prompt 44 · prefill 512 tok/s" in app.chat.status.text()
        engine.reused_tokens = 43  # everything but the last token was already in the KV cache
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        text = app.chat.status.text()
        assert "prompt 44 (43 cached)" in text and "prefill" not in text


async def test_the_status_bar_names_the_backend_and_its_threads(tmp_path):
    app = make_app(tmp_path, FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "│ cpu·2t │" in app.chat.status.text()


async def open_prompt(app, pilot) -> PromptScreen:
    await pilot.press("f3")
    await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen))
    return app.screen


async def test_f3_without_a_draft_shows_the_conversation_and_no_reply_header(tmp_path):
    app = make_app(tmp_path, FakeEngine(replies=["Fine, thanks."]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "How are you?")
        await settle(app, pilot)
        screen = await open_prompt(app, pilot)
        expected = fake_render([{"role": "user", "content": "How are you?"},
                                {"role": "assistant", "content": "Fine, thanks."}], add_generation_prompt=False)
        assert screen.prompt == expected and not screen.prompt.endswith("<|im_start|>assistant\n")
        title = str(screen.query_one("#prompt-title").render())
        assert f"{len(fake_pieces(expected))} tokens" in title and "so far" in title


async def test_f3_with_a_draft_shows_exactly_the_request_sending_it_makes(tmp_path):
    engine = FakeEngine(gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "first")
        await wait_until(pilot, lambda: engine.streaming.is_set())
        await pilot.press("escape")  # stopped before its first token: an empty reply, never sent back
        await settle(app, pilot)
        app.chat.chat_input.text = "second"
        screen = await open_prompt(app, pilot)
        shown = screen.prompt
        await pilot.press("escape")
        engine.gated = False
        await send(app, pilot, "second")
        await settle(app, pilot)
        assert shown == fake_render(engine.calls[-1]["messages"])
        assert "first\n\nsecond" in shown  # the user turns around the empty reply are joined, as sent
