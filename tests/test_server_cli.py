"""`chord-chat serve` on the command line: its refusals (one line each, nothing
bound), the missing extra, and the real verb answering on loopback."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from chord_core.cli.serve_cmd import READY_LINE, is_loopback
from chord_tui.cli import main
from server_harness import JOIN_S, MODEL_ID, smollm_path


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_binding_beyond_loopback_without_a_key_is_refused(capsys):
    assert main(["serve", str(smollm_path()), "--host", "0.0.0.0", "--port", "0"]) == 1
    err = error_line(capsys)
    assert "refusing to bind 0.0.0.0 without an API key" in err and "--insecure" in err


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("127.0.0.2", True), ("0.0.0.0", False), ("192.168.1.4", False),
                                            ("example.com", False)])
def test_which_hosts_count_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("args, says", [
    (["--parallel", "0"], "--parallel must be between 1 and 64, got 0"),
    (["--port", "70000"], "--port must be between 0 and 65535, got 70000"),
    (["--queue", "-1"], "--queue must be 0 or more, got -1"),
    (["--ctx", "4"], "--ctx must be at least"),
    (["--api-key", " "], "--api-key is empty"),
])
def test_bad_options_are_one_line_errors(capsys, args, says):
    assert main(["serve", str(smollm_path()), *args]) == 1
    assert says in error_line(capsys)


def test_an_unknown_model_is_named_before_anything_is_bound(capsys):
    assert main(["serve", "no-such-model", "--port", "0"]) == 1
    assert "'no-such-model'" in error_line(capsys)


def test_without_the_serve_extra_the_verb_names_it(tmp_path):
    # a uvicorn that does not import, ahead of the real one on the path
    (tmp_path / "uvicorn").mkdir()
    (tmp_path / "uvicorn" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'uvicorn'\")\n")
    r = subprocess.run([sys.executable, "-m", "chord_tui", "serve", str(smollm_path())], capture_output=True,
                       text=True, timeout=JOIN_S, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 1
    assert r.stderr.strip() == ("chord-chat: error: chord-chat serve needs the 'serve' extra (module uvicorn is "
                                "missing): pip install \"chord-chat[serve]\"")


def test_the_engine_imports_the_server_packages_only_when_serving():
    code = ("import sys, chord_core.cli.serve_cmd, chord_core.server; "
            "early = [m for m in ('starlette', 'uvicorn', 'sse_starlette') if m in sys.modules]; "
            "import chord_core.server.app; "
            "ui = [m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'chord_tui'))]; "
            "print(early, ui); sys.exit(1 if early or ui else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=JOIN_S)
    assert r.returncode == 0, r.stdout + r.stderr


def test_serve_answers_with_the_key_and_stops_on_ctrl_c():
    proc = subprocess.Popen([sys.executable, "-m", "chord_tui", "serve", str(smollm_path()), "--port", "0",
                             "--parallel", "1", "--ctx", "256", "--api-key", "k3y"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    try:
        seen = []
        while not any(READY_LINE in line for line in seen):
            seen.append(lines.get(timeout=JOIN_S))  # a bound on the wait, not a speed assertion
        ready = next(line for line in seen if READY_LINE in line)
        assert "1 slot of 256 tokens" in ready
        port = int(re.search(r"127\.0\.0\.1:(\d+)/v1", ready).group(1))
        status, body = _post(port, "/v1/chat/completions", {"model": MODEL_ID, "max_tokens": 2,
                                                            "messages": [{"role": "user", "content": "Hi"}]},
                             key="k3y")
        assert status == 200 and body["usage"]["completion_tokens"] == 2
        status, body = _post(port, "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]})
        assert status == 401 and body["error"]["type"] == "authentication_error"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(JOIN_S) in (0, 130)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(JOIN_S)


def _post(port: int, path: str, body: dict, key: str | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=JOIN_S)
    try:
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _served(model: Path, capsys, *options: str) -> str:
    from chord_core.cli.serve_cmd import _load
    from chord_tui.cli import build_parser

    args = build_parser().parse_args(["serve", str(model), "--parallel", "1", "--ctx", "256", *options])
    _load(model, model.stem, {}, args)
    return capsys.readouterr().err


def test_serving_a_base_model_warns_that_chat_requests_are_completed_as_text(capsys, gemma_path):
    err = _served(Path(gemma_path), capsys)
    assert "is a base model: completion only" in err and "/v1/completions" in err
    assert "base model" not in _served(Path(gemma_path), capsys, "--template", "gemma")
