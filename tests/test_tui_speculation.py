"""Speculative decoding in the TUI: the side panel's switch and draft-model
picker reach the engine (off the UI thread), a draft with another vocabulary
is refused with a notice, and the status bar shows the share of guesses kept."""

from __future__ import annotations

from fake_engine import FakeEngine, entry, make_app, send, settle
from textual.widgets import Select, Switch

from chord_core.events import Stats
from chord_tui.config import AppConfig
from chord_tui.widgets.status_bar import StatusBar

SIZE = (140, 60)


def test_the_status_bar_shows_the_guesses_kept_while_streaming_and_after():
    bar = StatusBar(lambda: 0.0)
    bar.refresh_text = lambda: None  # not mounted
    bar.reply_started(prompt_tokens=40, n_ctx=2048)
    bar.set_stats(Stats(40, 500.0, 180.0, 0.2, 16, 56, 2048, draft_proposed=16, draft_accepted=12))
    assert bar.text().startswith("generating 180.0 tok/s · kept 75% of 16 guesses")
    bar.reply_finished("stop", Stats(40, 500.0, 175.0, 0.2, 20, 60, 2048, draft_proposed=20, draft_accepted=14))
    assert "175.0 tok/s · kept 70% of 20 guesses · prompt 40" in bar.text()
    bar.reply_started(prompt_tokens=40, n_ctx=2048)
    bar.reply_finished("stop", Stats(40, 500.0, 90.0, 0.2, 20, 60, 2048))  # nothing guessed: nothing said
    assert "guesses" not in bar.text()


async def test_a_streamed_reply_reports_its_guesses_in_the_status_bar(tmp_path):
    engine = FakeEngine(guesses=(10, 8))
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "hello")
        await settle(app, pilot)
        assert "kept 80% of 10 guesses" in app.chat.status.text()


async def test_the_switch_and_the_draft_picker_set_the_engines_speculation(tmp_path):
    engine = FakeEngine()
    engine.models.append(entry("smollm2-tiny-draft", n_params=10_000_000))
    engine.draft_mismatch = ("gemma-3-270m",)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        switch = app.chat.query_one("#spec-lookup", Switch)
        picker = app.chat.query_one("#draft-model", Select)
        assert switch.value is True and picker.is_blank()
        assert [value for _, value in picker._options if isinstance(value, str)] == [
            "smollm2-135m", "gemma-3-270m", "smollm2-tiny-draft"]
        switch.value = False
        await settle(app, pilot)
        assert engine.speculation_calls[-1] == (False, None)
        picker.value = "smollm2-tiny-draft"
        await settle(app, pilot)
        assert engine.speculation == (False, "smollm2-tiny-draft")
        picker.value = "gemma-3-270m"  # another vocabulary: refused, the picker shows what is in use
        await settle(app, pilot)
        assert engine.speculation == (False, "smollm2-tiny-draft")
        assert picker.value == "smollm2-tiny-draft"
        assert any("vocabulary differs" in str(n.message) for n in app._notifications)
        assert engine.ui_thread_calls == []
        app.save_config()  # what the save timer does
    saved = AppConfig.load(tmp_path / "config.toml")  # the next start begins with the last choice that took
    assert (saved.lookup, saved.draft_model) == (False, "smollm2-tiny-draft")
