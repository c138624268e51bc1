"""The models screen: list and details, add with path completion, pull with
progress, delete with confirmation, set default, switch model, load failure."""

from __future__ import annotations

from fake_engine import DEFAULT_REPLY, FakeEngine, make_app, settle, wait_until
from textual.widgets import DataTable, Input, ProgressBar, Static

from chord_tui.screens.models import ModelsScreen
from chord_tui.widgets.message_view import MessageView
from chord_tui.widgets.path_suggester import PathSuggester

SIZE = (120, 40)


async def open_models(app, pilot) -> ModelsScreen:
    await settle(app, pilot)
    await pilot.press("f4")
    await pilot.pause()
    assert isinstance(app.screen, ModelsScreen)
    return app.screen


def names(screen: ModelsScreen) -> list[str]:
    table = screen.query_one(DataTable)
    return [table.get_row_at(i)[1] for i in range(table.row_count)]


async def test_library_table_and_details(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        assert names(screen) == ["smollm2-135m", "gemma-3-270m"]
        table = screen.query_one(DataTable)
        assert table.get_row_at(0)[0] == "●★"  # loaded and default
        await pilot.press("down")
        details = str(screen.query_one("#model-details", Static).render())
        assert "gemma-3-270m" in details and "gemma3" in details and "fallback: gemma" in details
        assert "general.name: gemma-3-270m" in details
        await pilot.press("escape")
        assert not isinstance(app.screen, ModelsScreen)


async def test_add_file_with_path_completion(tmp_path):
    models = tmp_path / "my models"
    models.mkdir()
    (models / "tiny-model.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    (models / "notes.txt").write_text("x")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        field = screen.query_one("#add-path", Input)
        field.focus()
        await pilot.press(*str(models / "ti"))
        await wait_until(pilot, lambda: field._suggestion == str(models / "tiny-model.gguf"))
        await pilot.press("right")  # accept the suggestion
        assert field.value == str(models / "tiny-model.gguf")
        await pilot.press("enter")
        await settle(app, pilot)
        assert "tiny-model" in names(screen)
        assert app.engine.models[-1].path == str(models / "tiny-model.gguf")
        assert field.value == ""


async def test_adding_a_bad_file_reports_and_stays_usable(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        screen.query_one("#add-path", Input).value = str(tmp_path / "notes.txt")
        await pilot.click("#add")
        await settle(app, pilot)
        assert any("not a GGUF file" in n.message for n in app._notifications)
        assert names(screen) == ["smollm2-135m", "gemma-3-270m"]


async def test_path_suggester_completes_directories_and_gguf_first(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    (tmp_path / "model.txt").write_text("")
    (tmp_path / "models").mkdir()
    suggester = PathSuggester()
    assert await suggester.get_suggestion(str(tmp_path / "models")) == str(tmp_path / "models") + "/"
    assert await suggester.get_suggestion(str(tmp_path / "model.")) == str(tmp_path / "model.gguf")
    assert await suggester.get_suggestion(str(tmp_path / "zzz")) is None
    assert await suggester.get_suggestion("") is None


async def test_pull_shows_progress_then_adds_the_model(tmp_path):
    engine = FakeEngine(pull_gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        screen.query_one("#pull-source", Input).value = "hf:someone/repo/pulled-model.gguf"
        await pilot.click("#pull")
        await pilot.pause()
        bar = screen.query_one("#pull-progress", ProgressBar)
        assert screen.query_one("#pull-row").display
        engine.release_pull(3)  # 0%, 25%, 50%
        await wait_until(pilot, lambda: bar.progress == 2_000_000)
        assert bar.total == 4_000_000 and bar.percentage == 0.5
        assert "/ 4.0 MB" in str(screen.query_one("#pull-label").render())  # decimal MB, as the CLI
        engine.release_pull(2)
        await settle(app, pilot)
        assert engine.pulls == ["hf:someone/repo/pulled-model.gguf"]
        assert "pulled-model" in names(screen)
        assert not screen.query_one("#pull-row").display


async def test_delete_needs_confirmation(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        await pilot.press("down", "delete")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert names(screen) == ["smollm2-135m", "gemma-3-270m"]
        await pilot.press("delete")
        await pilot.pause()
        await pilot.click("#confirm")
        await pilot.pause()
        assert names(screen) == ["smollm2-135m"]
        assert [m.name for m in engine.models] == ["smollm2-135m"]


async def test_deleting_the_loaded_model_warns_and_is_not_reopened_next_time(tmp_path):
    from chord_tui.screens.dialogs import ConfirmDialog

    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        assert app.engine.info.name == "smollm2-135m" and app.config.last_model == "smollm2-135m"
        await pilot.press("delete")  # the first row: the loaded model
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "loaded model" in app.screen.consequence
        await pilot.click("#confirm")
        await pilot.pause()
        assert names(screen) == ["gemma-3-270m"]
        assert app.config.last_model is None


async def test_set_default(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        await pilot.press("down", "d")
        await settle(app, pilot)
        assert [m.name for m in engine.models if m.is_default] == ["gemma-3-270m"]
        assert screen.query_one(DataTable).get_row_at(1)[0].strip() == "★"


async def test_switching_model_keeps_the_conversation(tmp_path):
    engine = FakeEngine(load_gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        engine.release_load()  # the startup load
        await settle(app, pilot)
        app.chat.chat_input.text = "hello"
        await pilot.press("enter")
        await settle(app, pilot)
        conversation = app.chat.state.conversation_id
        screen = await open_models(app, pilot)
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: app.loading_model == "gemma-3-270m" and screen.query_one("#load-row").display)
        await wait_until(pilot, lambda: screen.query_one("#load-progress", ProgressBar).progress == 50)
        assert "weights 50%" in app.chat.status.text()
        engine.release_load()
        await settle(app, pilot)
        assert engine.info.name == "gemma-3-270m"
        assert not screen.query_one("#load-row").display
        await pilot.press("escape")
        assert app.chat.state.conversation_id == conversation
        assert [v.content for v in app.chat.query(MessageView)] == ["hello", DEFAULT_REPLY]
        assert "gemma-3-270m" in str(app.chat.query_one("#model-name").render())
        assert "gemma-3-270m" in app.chat.status.text()
        assert app.config.last_model == "smollm2-135m"  # gemma is a base model: the next start opens the chat model
        app.chat.chat_input.text = "and now?"
        await pilot.press("enter")
        await settle(app, pilot)
        assert len(engine.calls[-1]["messages"]) == 3  # the whole conversation went to the new model


async def test_load_failure_shows_reason_and_app_stays_usable(tmp_path):
    engine = FakeEngine(fail_load={"gemma-3-270m": "unsupported architecture 'gemma3'"})
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        await pilot.press("down", "enter")
        await settle(app, pilot)
        assert any("unsupported architecture" in n.message for n in app._notifications)
        assert screen.query_one("#load-row").display
        assert "failed: unsupported architecture" in str(screen.query_one("#load-label").render())
        assert app.loading_model is None
        assert engine.info.name == "smollm2-135m"  # the old model is still there
        await pilot.press("escape")
        app.chat.chat_input.focus()
        app.chat.chat_input.text = "still there?"
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.chat.state.messages[-1].content == DEFAULT_REPLY


async def test_startup_load_failure_leaves_app_usable(tmp_path):
    engine = FakeEngine(fail_load={"smollm2-135m": "file is truncated"})
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert engine.info is None
        assert any("file is truncated" in n.message for n in app._notifications)
        assert "no model" in app.chat.status.text()
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("down", "enter")
        await settle(app, pilot)
        assert engine.info.name == "gemma-3-270m"


def test_details_give_size_and_parameters_as_the_cli_prints_them():
    from fake_engine import entry

    from chord_tui.screens.models import details

    text = details(entry("gemma", size_bytes=253_100_000, n_params=268_098_176, quant="Q4_K_M"), loaded=False)
    assert "253.1 MB" in text and "268.1M" in text and "Q4_K_M" in text
