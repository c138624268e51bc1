"""The engine protocol's threading rule: no engine or library call runs on
the UI thread. The fake engine refuses any call made on the App's thread
and records it; this walks through every screen action that reaches the
engine and checks that none was made there."""

from __future__ import annotations

from fake_engine import FakeEngine, make_app, send, settle, wait_until
from textual.widgets import Input, Select

from chord_tui.screens.dialogs import ConfirmDialog
from chord_tui.screens.models import ModelsScreen
from chord_tui.screens.prompt_view import PromptScreen

SIZE = (140, 44)


async def test_no_engine_or_library_call_runs_on_the_ui_thread(tmp_path):
    gguf = tmp_path / "added.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)  # startup: the default model is looked up and loaded
        await send(app, pilot, "hello")
        await settle(app, pilot)
        app.update_memory()
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("escape")

        select = app.chat.query_one("#context-size", Select)
        select.value = 1024
        await settle(app, pilot)
        assert engine.info.n_ctx == 1024

        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        screen = app.screen
        await settle(app, pilot)
        screen.table.focus()
        await pilot.press("down", "d")  # set the default
        await settle(app, pilot)
        field = screen.query_one("#add-path", Input)
        field.value = str(gguf)
        field.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        source = screen.query_one("#pull-source", Input)
        source.value = "hf:someone/repo/pulled.gguf"
        source.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        screen.table.focus()
        await pilot.press("end", "delete")  # delete the pulled model
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await settle(app, pilot)
        await pilot.press("home", "down", "enter")  # load the second model
        await settle(app, pilot)

        assert engine.loads == ["smollm2-135m", "gemma-3-270m"]
        assert "added" in {m.name for m in engine.models} and "pulled" not in {m.name for m in engine.models}
        assert engine.calls and engine.pulls == ["hf:someone/repo/pulled.gguf"]
        assert engine.ui_thread_calls == []


async def test_the_fake_engine_catches_a_call_on_the_ui_thread(tmp_path):
    """The check above can fail: a direct call from the App's thread is refused and recorded."""
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        try:
            app.engine.list_models()
        except AssertionError:
            pass
        assert engine.ui_thread_calls == ["list_models"]
