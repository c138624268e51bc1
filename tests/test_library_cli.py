"""``chord-chat models ...`` through the real dispatcher."""

from __future__ import annotations

import importlib.metadata
import io
import shutil
from pathlib import Path

import pytest

from chord_core import locations
from chord_core.library import get_entry, list_entries
from chord_core.library.progress import StderrProgress, render_progress
from chord_tui.cli import main
from gguf_rewrite import write_base_model

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
TINY_LLAMA = TINY / "tiny-llama-F32.gguf"
TINY_QWEN = TINY / "tiny-qwen2-F32.gguf"


@pytest.fixture(autouse=True)
def fresh_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("chord_core.library.discovery.installed_distributions", lambda: [])


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_of_an_empty_library_says_how_to_add(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "models add" in out and "models pull" in out


def test_add_then_list_shows_a_table_with_the_default_marked(capsys):
    assert run(capsys, "add", str(TINY_LLAMA))[0] == 0
    assert run(capsys, "add", str(TINY_QWEN), "--name", "qwen")[0] == 0
    assert run(capsys, "default", "qwen")[0] == 0
    code, out, _ = run(capsys, "list")
    assert code == 0
    header, *rows = [line for line in out.splitlines() if line.strip()][:3]
    assert header.split() == ["NAME", "ARCH", "PARAMS", "QUANT", "SIZE", "CONTEXT", "KIND", "SOURCE"]
    by_name = {row.split()[1] if row.startswith("*") else row.split()[0]: row for row in rows}
    assert by_name["qwen"].startswith("*") and "qwen2" in by_name["qwen"]
    assert not by_name["tiny-llama-F32"].startswith("*") and "llama" in by_name["tiny-llama-F32"]
    assert run(capsys, "default")[1].strip() == "qwen"


def test_list_and_show_mark_a_base_model_completion_only(capsys, tmp_path):
    run(capsys, "add", str(write_base_model(TINY_LLAMA, tmp_path / "base.gguf")))
    run(capsys, "add", str(TINY_LLAMA), "--name", "chat")
    code, out, _ = run(capsys, "list")
    rows = {line.split()[0].lstrip("*") or line.split()[1]: line.split() for line in out.splitlines()[1:3]}
    assert code == 0 and "base" in rows["base"] and "chat" in rows["chat"]
    assert "base = base model: completion only" in out
    code, out, _ = run(capsys, "show", "base")
    assert code == 0 and "chat template:  none" in out and "base model: completion only" in out
    _, out, _ = run(capsys, "show", "chat")
    assert "completion only" not in out


def test_models_without_a_verb_lists(capsys):
    run(capsys, "add", str(TINY_LLAMA))
    code, out, _ = run(capsys)
    assert code == 0 and "tiny-llama-F32" in out


def test_list_runs_discovery(capsys, tmp_path, monkeypatch):
    info = tmp_path / "site" / "shipper-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shipper\nVersion: 1.0\n")
    (info / "RECORD").write_text("shipper/packed.gguf,,\n")
    (tmp_path / "site" / "shipper").mkdir()
    shutil.copy(TINY_LLAMA, tmp_path / "site" / "shipper" / "packed.gguf")
    monkeypatch.setattr("chord_core.library.discovery.installed_distributions",
                        lambda: importlib.metadata.distributions(path=[str(tmp_path / "site")]))
    _, out, _ = run(capsys, "list")
    assert "packed" in out and "package:shipper" in out


def test_show_prints_metadata_template_and_tensors(capsys):
    run(capsys, "add", str(TINY_LLAMA), "--name", "tiny")
    code, out, _ = run(capsys, "show", "tiny")
    assert code == 0
    entry = get_entry("tiny")
    assert f"sha256:         {entry.sha256}" in out
    assert "architecture:   llama" in out
    assert "general.name = tiny-llama" in out
    assert "chat template:  " + entry.chat_template_source in out
    assert f"tensors:        " in out and f"({entry.parameter_count})" in out
    assert "F32" in out.split("tensors:")[1]


def test_add_copy_and_move(capsys, tmp_path):
    src = tmp_path / "mine.gguf"
    shutil.copy(TINY_LLAMA, src)
    code, out, _ = run(capsys, "add", str(src), "--copy", "--name", "copied")
    assert code == 0 and "copied to" in out and src.exists()
    src = tmp_path / "other.gguf"
    shutil.copy(TINY_QWEN, src)
    code, out, _ = run(capsys, "add", str(src), "--move", "--name", "moved")
    assert code == 0 and "moved to" in out and not src.exists()
    assert Path(get_entry("moved").path).parent == locations.models_dir()


def test_a_refused_add_is_one_line_on_stderr_and_exit_1(capsys, tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_text("no weights here")
    code, out, err = run(capsys, "add", str(junk))
    assert code == 1
    assert err.count("\n") == 1 and "junk.gguf" in err and "not a GGUF" in err
    assert list_entries() == []


def test_rm_with_yes_deletes_a_library_copy(capsys, tmp_path):
    run(capsys, "add", str(TINY_LLAMA), "--copy")
    path = Path(get_entry("tiny-llama-F32").path)
    code, out, _ = run(capsys, "rm", "tiny-llama-F32", "--yes")
    assert code == 0 and f"deleted {path}" in out and not path.exists()
    assert list_entries() == []


def test_a_model_whose_file_is_gone_cannot_be_the_default_and_rm_says_it_was_gone(capsys, tmp_path):
    copy = tmp_path / "gone.gguf"
    shutil.copy(TINY_LLAMA, copy)
    run(capsys, "add", str(copy))
    copy.unlink()
    code, _, err = run(capsys, "default", "gone")
    assert code == 1 and "its file" in err and "is gone" in err
    code, out, _ = run(capsys, "rm", "gone", "--yes")
    assert code == 0 and f"{copy} was already gone" in out and "outside the library" not in out


def test_rm_asks_on_a_tty_and_no_keeps_the_model(capsys, monkeypatch):
    run(capsys, "add", str(TINY_LLAMA))
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    code, out, _ = run(capsys, "rm", "tiny-llama-F32")
    assert code == 1 and "file stays where it is" in out
    assert [e.name for e in list_entries()] == ["tiny-llama-F32"]
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    code, out, _ = run(capsys, "rm", "tiny-llama-F32")
    assert code == 0 and f"kept {TINY_LLAMA.absolute()}" in out and TINY_LLAMA.exists()
    assert list_entries() == []


def test_rm_without_a_terminal_and_without_yes_refuses_and_keeps_everything(capsys, monkeypatch):
    run(capsys, "add", str(TINY_LLAMA), "--copy")
    path = Path(get_entry("tiny-llama-F32").path)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # `echo y | chord-chat models rm ...`
    code, out, err = run(capsys, "rm", "tiny-llama-F32")
    assert code == 1 and "--yes" in err and "not a terminal" in err and len(err.strip().splitlines()) == 1
    assert out == "" and path.exists() and [e.name for e in list_entries()] == ["tiny-llama-F32"]


def test_adding_a_file_the_library_has_offers_the_existing_entry(capsys, tmp_path):
    run(capsys, "add", str(TINY_LLAMA))
    same = tmp_path / "renamed.gguf"
    shutil.copy(TINY_LLAMA, same)
    code, _, err = run(capsys, "add", str(same))
    assert code == 1 and "already in the library as 'tiny-llama-F32'; use that one" in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_names_are_errors(capsys):
    for argv in (["show", "nope"], ["rm", "nope", "--yes"], ["default", "nope"]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and "nope" in err


def test_pull_reports_a_bad_source(capsys):
    code, _, err = run(capsys, "pull", "not-a-url")
    assert code == 1 and "models add" in err


def test_progress_line_has_size_speed_and_eta():
    line = render_progress(50_000_000, 100_000_000, 10_000_000)
    assert "50.0%" in line and "50.0 MB / 100.0 MB" in line and "10.0 MB/s" in line and "ETA 0:05" in line
    assert render_progress(3_000, None, None) == "3.0 KB  -- /s"


def test_stderr_progress_measures_speed_from_this_run_only():
    clock = iter([100.0, 102.0]).__next__
    stream = io.StringIO()
    bar = StderrProgress(stream=stream, clock=clock, min_interval=0)
    bar(40_000_000, 100_000_000)  # resumed: 40 MB were already there
    bar(60_000_000, 100_000_000)  # 20 MB in 2 s
    bar.finish()
    last = stream.getvalue().strip().split("\r")[-1]
    assert "10.0 MB/s" in last and "ETA 0:04" in last
