"""Every script in examples/ runs as a user would run it: a subprocess, on SmolLM2, a few tokens."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"
SMOLLM = "SmolLM2-135M-Instruct.Q4_1"


def run_example(name: str, *args: str, stdin: str = "", cwd: Path | None = None) -> str:
    r = subprocess.run([sys.executable, str(EXAMPLES / name), *args], input=stdin, capture_output=True,
                       text=True, timeout=300, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r.stdout


def test_stream_chat_answers_each_line_until_an_empty_one():
    out = run_example("stream_chat.py", SMOLLM, "6", stdin="Hi there\nWhat is two plus two?\n\nnever sent\n")
    rates = re.findall(r"^\[\d+ tok/s\]$", out, re.M)
    assert len(rates) == 2  # two replies, then the empty line ended the chat
    replies = re.split(r"^\[\d+ tok/s\]$", out, flags=re.M)[:2]
    assert all(r.strip() for r in replies)


def test_multi_turn_keeps_the_conversation_and_records_the_live_change():
    out = run_example("multi_turn.py", SMOLLM, "8")
    assert out.count("> ") == 2
    assert out.count("settings changed: [{'at_token': 3, 'temperature': 0.2}]") == 2
    reused = [int(n) for n in re.findall(r"(\d+) prompt tokens reused", out)]
    assert reused[0] == 0 and reused[1] > 20  # the second turn reused the first from the KV cache


def test_score_text_prints_the_perplexity_and_each_tokens_alternatives():
    out = run_example("score_text.py", SMOLLM, "The cat sat on the mat.")
    ppl = float(re.search(r"perplexity ([\d.]+) over (\d+) tokens", out).group(1))
    assert 1.0 < ppl < 10_000
    rows = [line for line in out.splitlines() if re.match(r"\s+(['\"]).*\1 +[\d.]+ +['\"]", line)]
    assert len(rows) == int(re.search(r"over (\d+) tokens", out).group(1))
    assert any(line.strip().startswith("' mat'") for line in rows)


def test_batch_jsonl_answers_every_question_in_order_and_a_rerun_keeps_them(tmp_path):
    out = run_example("batch_jsonl.py", SMOLLM, cwd=tmp_path)
    assert re.findall(r"^(q\d): ['\"].+['\"]$", out, re.M) == ["q0", "q1", "q2", "q3"]
    assert "[4 answered now, 0 earlier, 0 failed;" in out
    answers = (tmp_path / "answers.jsonl").read_text()
    again = run_example("batch_jsonl.py", SMOLLM, cwd=tmp_path)
    assert "[0 answered now, 4 earlier, 0 failed;" in again
    assert (tmp_path / "answers.jsonl").read_text() == answers


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    """``chord-chat serve`` on a free port; returns once it says it is ready, with its base URL."""
    server = subprocess.Popen([sys.executable, "-m", "chord_tui", "serve", SMOLLM, "--port", "0", *args],
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stderr], daemon=True).start()
    seen = []
    while True:
        try:
            line = lines.get(timeout=120)  # a bound on a wait for the line, not a speed assertion
        except queue.Empty:
            server.kill()
            raise AssertionError(f"chord-chat serve never said it was ready: {seen}")
        seen.append(line)
        found = re.search(r"ready: .* at (http://\S+/v1)", line)
        if found:
            return server, found.group(1)
        assert server.poll() is None, seen


def test_openai_client_streams_then_gets_a_seeded_reply_from_chord_chat_serve():
    server, base_url = start_server("--parallel", "1")
    try:
        first = run_example("openai_client.py", base_url, "6")
        again = run_example("openai_client.py", base_url, "6")
    finally:
        server.terminate()
        server.wait(timeout=60)
    streamed, whole, summary = first.splitlines()
    assert streamed.strip() and whole.strip()
    assert summary.startswith("[length;") and summary.endswith("+ 6 reply tokens]")
    assert again.splitlines()[1] == whole  # seeded: the same reply again
