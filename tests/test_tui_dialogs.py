"""Confirm dialogs: the whole message is visible, it says what happens to
files on disk, the keys are shown, and Enter keeps things as they are."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from fake_engine import FakeEngine, entry, make_app, send, settle, start
from textual.geometry import Region
from textual.widgets import Button, Static

from chord_core.locations import models_dir
from chord_tui.core_engine import CoreEngine
from chord_tui.screens.dialogs import ConfirmDialog
from chord_tui.screens.models import ModelsScreen, removal_consequence

SIZE = (80, 24)  # the smallest terminal the app is laid out for
TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"


def shown(widget: Static) -> str:
    """The text the widget draws, its lines joined by spaces."""
    strips = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return " ".join(" ".join(strip.text.split()) for strip in strips).strip()


def fully_visible(app, widget) -> bool:
    geometry = app.screen.find_widget(widget)
    return geometry.clip.contains_region(geometry.region)


def assert_whole_message_shown(app, dialog: ConfirmDialog) -> None:
    question, consequence = dialog.query(".dialog-question, .dialog-consequence")
    for widget, text in ((question, dialog.question), (consequence, dialog.consequence)):
        assert shown(widget) == " ".join(text.split())
        assert fully_visible(app, widget)
    for button in dialog.query(Button):
        assert fully_visible(app, button)


async def open_delete_model_dialog(app, pilot) -> ConfirmDialog:
    await start(app, pilot)
    await pilot.press("f4")
    await pilot.pause()
    assert isinstance(app.screen, ModelsScreen)
    await pilot.press("delete")  # the first row: the loaded model
    await pilot.pause()
    assert isinstance(app.screen, ConfirmDialog)
    return app.screen


async def test_deleting_the_loaded_model_shows_the_whole_message_and_its_keys(tmp_path):
    app = make_app(tmp_path, FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_delete_model_dialog(app, pilot)
        assert "/models/smollm2-135m.gguf will be deleted from disk" in dialog.consequence
        assert dialog.consequence.endswith("the chat keeps using it until you load another.")
        assert_whole_message_shown(app, dialog)
        labels = [str(b.label) for b in dialog.query(Button)]
        assert labels == ["Delete  y", "Cancel  n / Esc"]
        assert app.focused is dialog.query_one("#cancel")


async def test_enter_in_a_confirm_dialog_keeps_the_model_and_y_deletes_it(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await open_delete_model_dialog(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ModelsScreen)
        assert [m.name for m in engine.models] == ["smollm2-135m", "gemma-3-270m"]
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert [m.name for m in engine.models] == ["gemma-3-270m"]
        assert any("deleted its file" in n.message for n in app._notifications)


async def test_deleting_a_conversation_says_what_goes_and_enter_keeps_it(tmp_path):
    app = make_app(tmp_path, FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "a conversation with a rather long title that wraps in the dialog")
        await settle(app, pilot)
        app.chat.delete_conversation(app.chat.state.conversation_id)
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "deleted from the conversation database" in dialog.consequence
        assert "exported files are not touched" in dialog.consequence
        assert_whole_message_shown(app, dialog)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is app.chat
        assert len(app.store.list_conversations()) == 1


def test_a_model_added_from_elsewhere_keeps_its_file():
    kept = replace(entry("mine", path="/data/mine.gguf"), file_in_library=False)
    assert removal_consequence(kept, loaded=False) == (
        "Only the library entry is removed: its file /data/mine.gguf stays on disk.")
    split = replace(entry("big"), metadata={"shards": 3})
    assert removal_consequence(split, loaded=False).startswith(
        "Its 3 files (/models/big.gguf and the rest) will be deleted from disk")


def test_the_engine_says_which_files_removing_deletes(tmp_path, monkeypatch):
    """What the dialog promises is what the library does: a file added from
    elsewhere stays, a file in the library's folder is deleted."""
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))  # a library of its own
    engine = CoreEngine()
    outside = tmp_path / "outside.gguf"
    shutil.copy(TINY, outside)
    inside = models_dir() / "inside.gguf"
    shutil.copy(TINY.with_name("tiny-llama-F16.gguf"), inside)  # another file: one sha256 is one entry
    added_outside = engine.add_model(str(outside), name="outside")
    added_inside = engine.add_model(str(inside), name="inside")
    assert (added_outside.file_in_library, added_inside.file_in_library) == (False, True)
    engine.remove_model("outside")
    engine.remove_model("inside")
    assert outside.exists() and not inside.exists()
