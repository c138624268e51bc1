"""Snapshot tests: the screens as SVG, compared with tests/__snapshots__/.

Deterministic by construction: the fake engine's replies and numbers are
fixed, the App's clock is a StepClock, cursors do not blink, and each scene
clears its notifications. Regenerate after an intended change with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and review the diff.
The same scenes make screenshots/*.svg (scripts/screenshots.py).
"""

from __future__ import annotations

import pytest

from fake_engine import SCENES, FakeEngine, make_app, scene_engine, send, settle


@pytest.mark.parametrize("name", list(SCENES))
def test_snapshot(name, snap_compare, tmp_path):
    script, size = SCENES[name]
    app = make_app(tmp_path, scene_engine(name))
    try:
        assert snap_compare(app, run_before=script, terminal_size=size)
    finally:
        app.store.close()


def test_snapshot_inspector_no_color(snap_compare, tmp_path, monkeypatch):
    """Under NO_COLOR Textual renders monochrome; low-probability tokens stay underlined."""
    monkeypatch.setenv("NO_COLOR", "1")
    script, size = SCENES["inspector"]
    app = make_app(tmp_path, scene_engine("inspector"))
    try:
        assert snap_compare(app, run_before=script, terminal_size=size)
    finally:
        app.store.close()


async def _confirm_delete_conversation(pilot) -> None:
    """The delete dialog at 80x24 with a long title: the whole message wraps."""
    app = pilot.app
    await settle(app, pilot)
    await send(app, pilot, "A question whose title is long enough to need more than one line here")
    await settle(app, pilot)
    app.clear_notifications()  # before the dialog: the chat screen under it keeps its toasts
    await pilot.pause()
    app.chat.delete_conversation(app.chat.state.conversation_id)
    await settle(app, pilot)


def test_snapshot_confirm_dialog_at_80x24(snap_compare, tmp_path):
    app = make_app(tmp_path, FakeEngine(replies=["Sure."]))
    try:
        assert snap_compare(app, run_before=_confirm_delete_conversation, terminal_size=(80, 24))
    finally:
        app.store.close()
