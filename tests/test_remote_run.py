"""``chord-chat run NAME`` and ``chat NAME`` on a remote entry, against tests/openai_double.py."""

from __future__ import annotations

import json

import pytest
from openai_double import OpenAIDouble

from chord_core.errors import ChordError
from chord_core.library import add_remote
from chord_tui.cli import check_chat_model, main


@pytest.fixture(autouse=True)
def fresh_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))


@pytest.fixture
def double():
    with OpenAIDouble() as server:
        add_remote("double", server.url)
        yield server


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_streams_the_remote_reply_with_the_options_given(capsys, double):
    code, out, _ = run(capsys, "double", "Hi", "--seed", "5", "-n", "3", "--system", "Be brief.")
    assert code == 0 and out == "Hello, world!\n"
    sent = double.requests[-1]
    assert sent["seed"] == 5 and sent["max_tokens"] == 3
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    code, out, _ = run(capsys, "double", "Hi", "--json")
    result = json.loads(out)
    assert result["text"] == "Hello, world!" and result["model"] == "double" and result["remote"] == double.url


def test_run_refuses_options_only_a_local_model_has(capsys, double):
    code, _, err = run(capsys, "double", "Hi", "--ctx", "512", "--backend", "numpy")
    assert code == 1 and "--ctx, --backend: double is a remote model" in err
    assert double.requests == []


def test_a_broken_stream_prints_what_arrived_then_one_error_line(capsys, double):
    double.drop_after = 2
    code, out, err = run(capsys, "double", "Hi")
    assert code == 1 and out == "Hello,\n"
    assert "broke off mid-reply" in err and len(err.strip().splitlines()) == 1


def test_run_with_an_unset_key_variable_is_one_line_before_any_request(capsys, double, monkeypatch):
    monkeypatch.delenv("DOUBLE_KEY", raising=False)
    add_remote("keyed", double.url, api_key_env="DOUBLE_KEY")
    code, _, err = run(capsys, "keyed", "Hi")
    assert code == 1 and "$DOUBLE_KEY, which is not set" in err and double.requests == []


def test_chat_accepts_a_remote_name_and_still_refuses_an_unknown_one():
    add_remote("somewhere", "http://127.0.0.1:9/v1")  # nothing listens: the UI shows that, not the CLI
    check_chat_model("somewhere")
    with pytest.raises(ChordError, match="no such file and no library model"):
        check_chat_model("nowhere")
