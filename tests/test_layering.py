"""The engine never imports the UI (harlequin's rule)."""

import subprocess
import sys


def test_chord_core_does_not_import_textual():
    code = (
        "import sys, chord_core, chord_core.model, chord_core.forward, chord_core.events; "
        "import chord_core.cli.run_cmd, chord_core.cli.bench_cmd, chord_core.cli.models_cmd; "
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'chord_tui'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_engine_cli_commands_do_not_import_textual():
    code = (
        "import sys; from chord_tui.cli import build_parser; build_parser(); "
        "sys.exit(1 if 'textual' in sys.modules else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
