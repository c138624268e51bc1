"""`chord-chat bench --depth/--repeat` and the engine options every verb takes
(--backend, --threads, --kv-type), with one-line errors for bad values."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from chord_core.bench import _timed_decode, _timed_prefill
from chord_core.cli.common import load_model
from chord_core.model import Model
from chord_tui.cli import main
from chord_tui.core_engine import CoreEngine

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bench_json_reports_depth_engine_and_every_repetition(capsys):
    code, out, _ = cli(capsys, "bench", TINY, "--json", "-p", "8", "-n", "2", "--depth", "16", "--repeat", "3",
                       "--backend", "numpy", "--threads", "1", "--kv-type", "f16")
    res = json.loads(out)
    assert code == 0
    assert (res["depth"], res["backend"], res["threads"], res["kv_type"]) == (16, "numpy", 1, "f16")
    assert len(res["prefill_runs"]) == len(res["decode_runs"]) == 3
    assert sorted(res["decode_runs"])[1] == res["decode_tok_s"]  # the median


def test_bench_text_says_the_depth_and_the_engine(capsys):
    code, out, _ = cli(capsys, "bench", TINY, "-p", "8", "-n", "2", "-d", "16", "--backend", "numpy",
                       "--threads", "1")
    assert code == 0
    assert "engine   numpy backend, 1 threads, f32 KV cache" in out
    assert "(8 tokens, after 16 tokens of context)" in out and "(2 tokens, after 16 tokens of context)" in out


def test_threads_default_to_the_cores_this_process_may_use(capsys):
    code, out, _ = cli(capsys, "bench", TINY, "--json", "-p", "4", "-n", "1", "--backend", "numpy")
    assert code == 0 and json.loads(out)["threads"] == len(os.sched_getaffinity(0))


def test_timed_phases_run_on_top_of_the_context_and_forget_what_a_repetition_added():
    model = Model.load(TINY, backend="numpy")
    context, prompt = list(range(3, 19)), list(range(40, 48))
    cache = model.new_cache(64)
    model.eval(context, cache)
    for _ in range(2):
        _timed_prefill(model, cache, len(context), prompt)
        assert cache.tokens == context + prompt
        _timed_decode(model, cache, len(context), 3)
        assert cache.n_past == len(context) + 3 and cache.tokens[:len(context)] == context


def test_depth_counts_against_the_context(capsys):
    code, _, err = cli(capsys, "bench", TINY, "-d", "500", "-p", "32", "-n", "8")
    assert code == 1 and err.strip() == ("chord-chat: error: 32 tokens after 500 of context do not fit "
                                         "the model's context of 512")


@pytest.mark.parametrize("option, says", [
    (["--threads", "0"], "--threads must be at least 1, got 0"),
    (["--backend", "gpu"], "--backend 'gpu' is not one of auto, cpu, numpy, cuda"),
    (["--kv-type", "q8"], "--kv-type 'q8' is not one of f32, f16"),
])
@pytest.mark.parametrize("verb", ["bench", "run", "perplexity", "chat"])
def test_bad_engine_options_are_one_line_errors(capsys, tmp_path, verb, option, says):
    text = tmp_path / "text.txt"
    text.write_text("Some text to score. " * 200)
    rest = {"run": ["hi"], "perplexity": [text]}.get(verb, [])
    code, out, err = cli(capsys, verb, TINY, *rest, *option)
    assert code == 1 and err.strip() == f"chord-chat: error: {says}"


def test_bad_bench_counts_are_one_line_errors(capsys):
    for option, says in ((["--depth", "-1"], "--depth must be 0 or more, got -1"),
                         (["--repeat", "0"], "--repeat must be at least 1, got 0")):
        code, _, err = cli(capsys, "bench", TINY, *option)
        assert code == 1 and err.strip() == f"chord-chat: error: {says}"


def test_run_and_perplexity_load_the_model_as_the_options_say():
    args = argparse.Namespace(backend="numpy", threads=1, kv_type="f16")
    model = load_model(str(TINY), args)
    assert (model.backend_name, model.threads, model.kv_type) == ("numpy", 1, "f16")


def test_the_chat_engine_loads_the_model_as_the_options_say():
    engine = CoreEngine(load_options={"backend": "numpy", "threads": 1, "kv_type": "f16"})
    engine.load(str(TINY))
    model = engine._require().model
    assert (model.backend_name, model.threads, model.kv_type) == ("numpy", 1, "f16")
