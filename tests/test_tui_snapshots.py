"""Snapshot tests: the screens as SVG, compared with tests/__snapshots__/.

Deterministic by construction: the fake engine's replies and numbers are
fixed, the App's clock is a StepClock, cursors do not blink, and each scene
clears its notifications. Regenerate after an intended change with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and review the diff.
The same scenes make screenshots/*.svg (scripts/screenshots.py).
"""

from __future__ import annotations

import pytest

from fake_engine import SCENES, make_app, scene_engine


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
