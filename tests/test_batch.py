"""chord-chat batch and chord_core.batch: correct answers, in input order, each
line's failure its own, resumable after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chord_core import BatchRequest, ChordError, Model, SamplerSettings, batch, batch_file
from chord_core.batch_io import read_done, read_requests

SMOLLM = "SmolLM2-135M-Instruct.Q4_1"
WAIT_S = 300  # bound on waits for a subprocess, far above what they take; never a speed assertion


def cli(*args: str, timeout: int = WAIT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chord_tui", *args], capture_output=True, text=True,
                          timeout=timeout)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def user(content: str) -> list[dict]:
    return [{"role": "user", "content": content}]


# -- each answer is the same request's through `run` ---------------------------------

PARITY_LINES = [
    ({"id": "greedy", "messages": user("Name a fruit."), "temperature": 0, "max_tokens": 10}, ["--temperature", "0"]),
    ({"id": "seeded", "messages": [{"role": "system", "content": "Be brief."}] + user("Name a colour."),
      "temperature": 0.9, "top_k": 20, "top_p": 0.9, "min_p": 0.02, "seed": 7, "max_tokens": 12},
     ["--system", "Be brief.", "--temperature", "0.9", "--top-k", "20", "--top-p", "0.9", "--min-p", "0.02",
      "--seed", "7"]),
    ({"id": "raw", "prompt": "Once upon a time", "temperature": 0.7, "repeat_penalty": 1.1, "seed": 3,
      "max_tokens": 9}, ["--raw", "--temperature", "0.7", "--repeat-penalty", "1.1", "--seed", "3"]),
]


def run_alone(line: dict, flags: list[str], smollm_path: Path) -> dict:
    """The same request through ``chord-chat run --json`` (plain decoding, as a batch slot decodes)."""
    prompt = line["prompt"] if "prompt" in line else line["messages"][-1]["content"]
    r = cli("run", str(smollm_path), *flags, "-n", str(line["max_tokens"]), "--no-lookup", "--json", prompt)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_each_answer_equals_the_same_request_through_run(tmp_path, smollm_path):
    source = write_jsonl(tmp_path / "in.jsonl", [line for line, _ in PARITY_LINES])
    r = cli("batch", str(smollm_path), str(source), "-o", str(tmp_path / "out.jsonl"), "--parallel", "3")
    assert r.returncode == 0, r.stderr
    answers = read_jsonl(tmp_path / "out.jsonl")
    assert [a["id"] for a in answers] == ["greedy", "seeded", "raw"]
    for answer, (line, flags) in zip(answers, PARITY_LINES):
        alone = run_alone(line, flags, smollm_path)
        assert answer["token_ids"] == alone["token_ids"], line["id"]
        assert answer["text"] == alone["text"]
        assert answer["finish_reason"] == alone["finish_reason"]
        assert answer["prompt_tokens"] == alone["prompt_tokens"]
        assert answer["completion_tokens"] == len(alone["token_ids"])


# -- order and failures -----------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm(smollm_path) -> Model:
    return Model.load(smollm_path)


def test_answers_come_in_request_order_though_later_ones_finish_first(smollm):
    # the first reply is much longer than the others: with 3 slots they finish before it
    requests = [BatchRequest(prompt="Count: 1, 2, 3,", settings=SamplerSettings(temperature=0, max_tokens=40), id="long")]
    requests += [BatchRequest(prompt=f"{w} is a", settings=SamplerSettings(temperature=0, max_tokens=2), id=w)
                 for w in ("Paris", "Rome", "Oslo", "Lima")]
    answers = list(batch(smollm, requests, parallel=3))
    assert [(a.index, a.id) for a in answers] == [(0, "long"), (1, "Paris"), (2, "Rome"), (3, "Oslo"), (4, "Lima")]
    assert answers[0].completion_tokens == 40 and all(a.completion_tokens == 2 for a in answers[1:])


def test_replies_generating_at_once_share_their_decode_steps(tmp_path, smollm):
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"Story number {i}:", "temperature": 0, "max_tokens": 40}
                                                 for i in range(4)])
    summary = batch_file(smollm, source, tmp_path / "out.jsonl", parallel=4)
    assert summary.generated_tokens == 160 and summary.errors == 0
    assert summary.decode_rows == 160  # every chosen token was evaluated by a decode step of the batcher
    assert summary.mean_batch > 1.0  # and those steps were shared: batched, not one reply at a time


def test_a_failing_line_records_its_error_and_the_rest_go_on(tmp_path, smollm_path):
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "ok1", "prompt": "Hello", "temperature": 0, "max_tokens": 3},
        "{not json",
        {"id": "role", "messages": [{"role": "robot", "content": "beep"}]},
        {"id": "key", "prompt": "x", "temprature": 0.5},
        {"id": "value", "prompt": "x", "top_p": 7},
        {"id": "long", "prompt": "word " * 200, "max_tokens": 3},  # longer than --ctx 64: fails in the engine
        {"id": "ok2", "messages": user("Hi"), "temperature": 0, "max_tokens": 3},
    ])
    r = cli("batch", str(smollm_path), str(source), "-o", str(tmp_path / "out.jsonl"), "--ctx", "64", "--parallel", "2")
    assert r.returncode == 1  # some lines failed: said in the exit status too
    answers = read_jsonl(tmp_path / "out.jsonl")
    assert [a["index"] for a in answers] == list(range(7))
    assert [a["id"] for a in answers] == ["ok1", None, "role", "key", "value", "long", "ok2"]
    errors = {a["id"]: a["error"] for a in answers if "error" in a}
    assert errors[None].startswith(f"{source}: line 2: not JSON")
    assert errors["role"] == f"{source}: line 3: message 0: role 'robot' is not one of system, user, assistant"
    assert errors["key"].startswith(f"{source}: line 4: unknown key(s) 'temprature'")
    assert errors["value"] == f"{source}: line 5: top_p must be between 0.0 and 1.0, got 7"
    assert errors["long"].startswith(f"{source}: line 6: ") and "too long for the context" in errors["long"]
    assert all("\n" not in e for e in errors.values())
    assert answers[0]["completion_tokens"] == 3 and answers[-1]["completion_tokens"] == 3
    assert "7 answered (5 failed) of 7" in r.stderr


def test_batch_without_output_writes_the_answers_to_stdout(tmp_path, smollm_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "prompt": "Hi", "temperature": 0, "max_tokens": 2}
                                                 for i in range(3)])
    r = cli("batch", str(smollm_path), str(source), "--parallel", "2")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == ["0", "1", "2"]


@pytest.mark.parametrize("args, message", [
    (["--parallel", "0"], "--parallel must be between 1 and 64, got 0"),
    (["-o", "{input}"], "the output would overwrite the input"),
    (["--ctx", "0"], "--ctx"),
])
def test_bad_options_are_one_line_errors(tmp_path, smollm_path, args, message):
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Hi"}])
    r = cli("batch", str(smollm_path), str(source), *[a.format(input=source) for a in args])
    assert r.returncode == 1
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_missing_input_file_is_named(tmp_path, smollm_path):
    r = cli("batch", str(smollm_path), str(tmp_path / "nope.jsonl"))
    assert r.returncode == 1 and f"{tmp_path / 'nope.jsonl'}: no such file" in r.stderr


# -- resume -----------------------------------------------------------------------------------


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen) -> None:
    """Until ``path`` holds ``n`` complete lines (a condition on the file, looked at often; bounded)."""
    deadline = time.monotonic() + WAIT_S
    while not (path.exists() and path.read_bytes().count(b"\n") >= n):
        assert proc.poll() is None, "the batch ended before it could be killed"
        assert time.monotonic() < deadline, f"no {n} answers in {path}"
        time.sleep(0.01)


def test_a_killed_batch_resumes_where_it_stopped(tmp_path, smollm_path):
    lines = [{"id": f"r{i}", "messages": user(f"Tell me about the number {i}."), "seed": i, "max_tokens": 16}
             for i in range(12)]
    source, out = write_jsonl(tmp_path / "in.jsonl", lines), tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "chord_tui", "batch", str(smollm_path), str(source), "-o", str(out),
                             "--parallel", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(out, 1, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=WAIT_S)
    kept = out.read_bytes()
    n_kept = kept.count(b"\n")
    # almost always mid-batch; on a starved machine the kill may come after the
    # last answer, and resuming must then answer nothing (no clock decides it)
    assert 1 <= n_kept <= 12
    r = cli("batch", str(smollm_path), str(source), "-o", str(out), "--parallel", "2")
    assert r.returncode == 0, r.stderr
    assert f"{12 - n_kept} answered (0 failed), {n_kept} already done of 12" in r.stderr
    assert out.read_bytes().startswith(kept[:kept.rfind(b"\n") + 1])  # what the killed run wrote is kept as it was
    answers = read_jsonl(out)
    assert [a["id"] for a in answers] == [f"r{i}" for i in range(12)]
    assert all(a["completion_tokens"] > 0 and a["seed"] == i for i, a in enumerate(answers))


def test_a_last_line_cut_short_by_a_kill_is_generated_again(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}])
    out = tmp_path / "out.jsonl"
    out.write_text('{"index": 0, "id": "a", "text": "hi"}\n{"index": 1, "id": "b", "te', encoding="utf-8")
    assert read_done(out, read_requests(source)) == 1
    assert out.read_text(encoding="utf-8") == '{"index": 0, "id": "a", "text": "hi"}\n'


def test_an_output_of_another_input_is_refused_and_left_alone(tmp_path, smollm_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}])
    out = tmp_path / "out.jsonl"
    out.write_text('{"index": 0, "id": "zzz", "text": "hi"}\n', encoding="utf-8")
    r = cli("batch", str(smollm_path), str(source), "-o", str(out))
    assert r.returncode == 1
    assert f"{out}: line 1 is not the answer to request 0 of this input" in r.stderr
    assert out.read_text(encoding="utf-8") == '{"index": 0, "id": "zzz", "text": "hi"}\n'


def test_closing_the_iterator_early_stops_the_rest(smollm):
    requests = [BatchRequest(prompt="Count: 1, 2,", settings=SamplerSettings(temperature=0, max_tokens=30))
                for _ in range(6)]
    answers = batch(smollm, requests, parallel=2)
    first = next(answers)
    answers.close()  # the other slot's reply is cancelled; the workers are joined
    assert first.completion_tokens == 30


@pytest.mark.parametrize("requests", [[BatchRequest(prompt="x"), {"prompt": "a dict, not a BatchRequest"}],
                                      "a string, not a list of requests"])
def test_a_request_of_the_wrong_type_is_a_one_line_error_not_a_hang(smollm, requests):
    # the worker thread died on it and the caller waited forever for its answer
    outcome = []

    def consume():
        try:
            outcome.append(list(batch(smollm, requests, parallel=2)))
        except ChordError as err:
            outcome.append(err)

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    worker.join(WAIT_S)  # a bound on a hang, far above what the call takes
    assert outcome, "batch() hung on a request of the wrong type"
    assert isinstance(outcome[0], ChordError) and "not a" in str(outcome[0]) and "BatchRequest" in str(outcome[0])
    assert "\n" not in str(outcome[0])


def test_a_bad_parallel_is_refused(smollm):
    with pytest.raises(ChordError, match="parallel must be between 1 and 64"):
        list(batch(smollm, [BatchRequest(prompt="x")], parallel=0))


def test_ctrl_c_keeps_the_answers_written_and_says_how_to_resume(tmp_path, smollm_path):
    # far more work than can finish between the first answer and the signal,
    # so the interrupt always lands mid-batch (the test waits on the file, not a clock)
    lines = [{"id": f"r{i}", "prompt": "Count: 1, 2,", "temperature": 0, "max_tokens": 32} for i in range(400)]
    source, out = write_jsonl(tmp_path / "in.jsonl", lines), tmp_path / "out.jsonl"
    # a shell starting this suite in the background (nohup, `&`, some CI runners)
    # hands its children SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: give the batch the disposition a terminal's Ctrl-C meets
    proc = subprocess.Popen([sys.executable, "-m", "chord_tui", "batch", str(smollm_path), str(source), "-o", str(out),
                             "--parallel", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_lines(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 130
    assert f"interrupted; the answers written are kept in {out}: run the same command to resume" in err
    answers = read_jsonl(out)  # whole lines only, in order
    assert [a["id"] for a in answers] == [f"r{i}" for i in range(len(answers))] and 1 <= len(answers) < 400
