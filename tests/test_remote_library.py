"""Remote library entries through ``chord-chat models``: stored, listed, shown, removed, refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chord_core import locations
from chord_core.errors import ChordError
from chord_core.library import add_model, add_remote, get_remote, resolve_model
from chord_tui.cli import main

TINY_LLAMA = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"


@pytest.fixture(autouse=True)
def fresh_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))


def models(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def index() -> dict:
    return json.loads((locations.data_dir() / "library.json").read_text())


def test_add_remote_stores_the_url_model_and_the_key_variables_name_never_the_key(capsys, monkeypatch):
    monkeypatch.setenv("MY_SERVER_KEY", "s3cret-value")
    code, out, _ = models(capsys, "add-remote", "office", "http://10.0.0.5:8080", "--model", "qwen",
                          "--api-key-env", "MY_SERVER_KEY")
    assert code == 0 and "added office: remote" in out
    stored = index()["remotes"]["office"]
    assert stored["url"] == "http://10.0.0.5:8080/v1"  # a bare server address gets the API's /v1
    assert stored["model"] == "qwen" and stored["api_key_env"] == "MY_SERVER_KEY"
    assert "s3cret-value" not in (locations.data_dir() / "library.json").read_text()


def test_list_and_show_mark_a_remote_model(capsys):
    add_remote("office", "http://127.0.0.1:8080/v1", model="qwen")
    code, out, _ = models(capsys, "list")
    row = next(line for line in out.splitlines() if "office" in line)
    assert code == 0 and "remote" in row and "http://127.0.0.1:8080/v1 (qwen)" in row
    code, out, _ = models(capsys, "show", "office")
    assert code == 0 and "kind:           remote" in out and "url:            http://127.0.0.1:8080/v1" in out
    assert "model id:       qwen" in out


def test_rm_of_a_remote_model_forgets_it_and_deletes_nothing(capsys, tmp_path):
    add_remote("office", "http://127.0.0.1:8080/v1")
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.name != "library.json")
    code, out, _ = models(capsys, "rm", "office", "--yes")
    assert code == 0 and "nothing on disk was deleted" in out
    assert get_remote("office") is None
    after = sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.name != "library.json")
    assert after == before


@pytest.mark.parametrize("url, says", [
    ("ftp://host/v1", "not a usable server URL"),
    ("localhost:8080", "not a usable server URL"),
    ("http://user:pw@host/v1", "--api-key-env"),
    ("http://host:80x/v1", "not a usable server URL"),
])
def test_a_bad_url_is_one_line_and_adds_nothing(capsys, url, says):
    code, _, err = models(capsys, "add-remote", "bad", url)
    assert code == 1 and says in err and len(err.strip().splitlines()) == 1
    assert get_remote("bad") is None


def test_a_key_passed_where_the_variable_name_goes_is_refused_without_echoing_it(capsys):
    code, _, err = models(capsys, "add-remote", "office", "http://h/v1", "--api-key-env", "sk-live-123456")
    assert code == 1 and "NAME of an environment variable" in err and "sk-live-123456" not in err


def test_a_name_clash_with_a_local_or_remote_model_is_refused(capsys):
    add_model(TINY_LLAMA, name="tiny")
    add_remote("office", "http://h/v1")
    for name in ("tiny", "office"):
        code, _, err = models(capsys, "add-remote", name, "http://other/v1")
        assert code == 1 and f"a model named {name!r} already exists" in err
    with pytest.raises(ChordError, match="already exists"):
        add_model(TINY_LLAMA.parent / "tiny-qwen2-F32.gguf", name="office")


def test_commands_that_need_a_local_file_say_the_name_is_remote(capsys):
    add_remote("office", "http://h:8080/v1")
    with pytest.raises(ChordError, match="is a remote model at http://h:8080/v1"):
        resolve_model("office")
    code, _, err = models(capsys, "default", "office")
    assert code == 1 and "is a remote model" in err
