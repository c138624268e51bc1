"""The engine's CLI verbs: tokenize, run, perplexity, bench, and their errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from gguf_rewrite import write_base_model

from chord_tui.cli import main

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tokenize_matches_llama_cpp(capsys, smollm_path, smollm_ref):
    for case in smollm_ref["tokenize"][:6]:
        code, out, _ = cli(capsys, "tokenize", smollm_path, case["text"], "--special")
        assert code == 0 and json.loads(out) == case["ids_special"]


def test_tokenize_no_bos(capsys, gemma_path):
    _, with_bos, _ = cli(capsys, "tokenize", gemma_path, "Hello")
    _, without, _ = cli(capsys, "tokenize", gemma_path, "Hello", "--no-bos")
    assert json.loads(with_bos)[0] == 2 and json.loads(with_bos)[1:] == json.loads(without)


@pytest.mark.parametrize("case_index", [1, 2])
def test_run_raw_greedy_reproduces_llama_cpp(capsys, smollm_path, smollm_ref, case_index):
    """The SmolLM2 prompts whose greedy run stays clear of near-ties for 16
    tokens, through the CLI on the default backend."""
    case = smollm_ref["greedy"][case_index]
    code, out, _ = cli(capsys, "run", smollm_path, case["prompt"], "--raw", "--temperature", "0",
                       "-n", "16", "--json")
    res = json.loads(out)
    assert code == 0 and res["token_ids"] == case["ids"][:16]
    assert res["finish_reason"] == "length"


def test_run_json_fields_and_template(capsys, smollm_path, tmp_path):
    msgs = tmp_path / "m.json"
    msgs.write_text(json.dumps([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]))
    code, out, _ = cli(capsys, "run", smollm_path, "What is 2+2?", "--messages", msgs, "--system", "Be brief.",
                       "--temperature", "0", "-n", "5", "--json")
    res = json.loads(out)
    assert code == 0
    for key in ("text", "token_ids", "prompt", "finish_reason", "prompt_tokens", "prefill_tok_s",
                "decode_tok_s", "ttft_s"):
        assert key in res
    assert res["prompt"] == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                             "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                             "<|im_start|>assistant\n")
    assert len(res["token_ids"]) <= 5 and res["template"] == "GGUF tokenizer.chat_template"
    assert res["completion_tokens"] == len(res["token_ids"])  # the name batch and serve use


def test_run_streams_and_verbose(capsys, smollm_path):
    code, out, err = cli(capsys, "run", smollm_path, "Say hi", "--temperature", "0", "-n", "4", "--verbose")
    assert code == 0 and out.strip()
    assert "<|im_start|>user\nSay hi<|im_end|>" in err and "tokens per second" in err
    # tokens, not forwards ("runs"): with speculative decoding one forward yields several
    assert re.search(r"^eval += +\d+ tokens \(", err, re.M), err


def test_run_takes_the_prompt_after_the_options_as_the_readme_shows(capsys, smollm_path):
    code, out, err = cli(capsys, "run", smollm_path, "--system", "Be brief.", "--temperature", "0", "-n", "4",
                         "--json", "Say hi")
    assert code == 0, err
    assert "<|im_start|>user\nSay hi<|im_end|>" in json.loads(out)["prompt"]
    with pytest.raises(SystemExit):
        main(["run", str(smollm_path), "-n", "4", "Say hi", "surplus"])
    assert "unrecognized arguments: surplus" in capsys.readouterr().err


def test_run_fallback_template_on_gemma_when_chosen(capsys, gemma_path):
    code, out, _ = cli(capsys, "run", gemma_path, "Hi", "--template", "gemma", "--temperature", "0", "-n", "3",
                       "--json")
    res = json.loads(out)
    assert code == 0 and res["template"] == "fallback: gemma"
    assert res["prompt"].startswith("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")


def test_run_prompt_from_stdin(smollm_path):
    r = subprocess.run([sys.executable, "-m", "chord_tui", "run", str(smollm_path), "--temperature", "0", "-n", "3",
                        "--json"], input="Hello", capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Hello" in json.loads(r.stdout)["prompt"]


def test_run_on_a_base_model_says_so_and_completes_the_prompt_as_raw_does(capsys, tmp_path):
    base = write_base_model(TINY, tmp_path / "base.gguf")
    code, out, err = cli(capsys, "run", base, "Once upon", "--temperature", "0", "-n", "6", "--json")
    res = json.loads(out)
    assert code == 0 and "tiny-base is a base model: completion only" in err and "--template" in err
    assert res["prompt"] == "Once upon" and res["template"] == "none (base model: completion only)"
    _, raw, raw_err = cli(capsys, "run", base, "--raw", "Once upon", "--temperature", "0", "-n", "6", "--json")
    assert json.loads(raw)["token_ids"] == res["token_ids"] and "base model" not in raw_err
    _, _, chat_err = cli(capsys, "run", base, "Hi", "--template", "chatml", "--temperature", "0", "-n", "2")
    assert "base model" not in chat_err  # a template chosen: it is chatted with


def test_run_stops_at_a_default_reply_limit_shown_in_help(capsys, tmp_path):
    # a random-weight base model never ends its turn: the reply stops at the default limit, not the context
    base = write_base_model(TINY, tmp_path / "base.gguf")
    code, out, err = cli(capsys, "run", base, "Once upon", "--temperature", "0", "--ctx", "1024", "--json")
    res = json.loads(out)
    assert code == 0 and res["finish_reason"] == "length" and len(res["token_ids"]) == 512
    assert "[reply cut at the default 512 tokens" in err and "context full" not in err
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "default 512" in " ".join(capsys.readouterr().out.split())


def test_errors_are_one_line_exit_1(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all" * 10)
    for args in (["run", str(bad), "hi"], ["tokenize", str(bad), "x"], ["bench", str(tmp_path / "nope.gguf")],
                 ["run", str(TINY), "hi", "--template", "nonexistent"], ["run", str(TINY), "hi", "--top-p", "7"]):
        r = subprocess.run([sys.executable, "-m", "chord_tui", *args], capture_output=True, text=True)
        assert r.returncode == 1, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("chord-chat: error:"), (args, r.stderr)
        assert "Traceback" not in r.stderr


def _bad_inputs(tmp_path):
    """(args, stdin, what the one line must say), from a QA sweep of the CLI."""
    (tmp_path / "bin.txt").write_bytes(b"\x00\xff\xfe text")
    (tmp_path / "wizard.json").write_text('[{"role": "wizard", "content": "x"}]')
    (tmp_path / "null.json").write_text('[{"role": "user", "content": null}]')
    (tmp_path / "model_dir").mkdir()
    (tmp_path / "note.jinja").write_text("Just a note.")
    (tmp_path / "broken.jinja").write_text("{% for m in messages %}{{ m }")
    t = str(TINY)
    return [
        (["tokenize", t, "bad \udcff utf8"], "not valid UTF-8"),
        (["perplexity", t, str(tmp_path / "bin.txt")], "not UTF-8 text"),
        (["perplexity", t, str(tmp_path / "bin.txt"), "--ctx", "8"], "--ctx must be at least 16 tokens, got 8"),
        (["run", t, "hi", "--ctx", "-5"], "--ctx must be at least 16"),
        (["run", t, "hi", "--seed", "4294967297"], "seed must be at most 4294967295"),
        (["run", t, "hi", "--temperature", "inf"], "temperature must be a finite number"),
        (["run", t, "--raw", ""], "--raw needs a non-empty PROMPT"),
        (["run", t, " \n"], "nothing to answer: the prompt is empty"),
        (["run", t, "hi", "--template", str(tmp_path / "note.jinja")], "is not a chat template"),
        (["run", t, "hi", "--template", str(tmp_path / "broken.jinja")], "has a syntax error at line 1"),
        (["run", t, "--messages", str(tmp_path / "wizard.json")], "role 'wizard' is not one of"),
        (["run", t, "--messages", str(tmp_path / "null.json")], "content must be a string"),
        (["bench", t, "-p", "0"], "at least 1"),
        (["bench", t, "-p", "600", "-n", "8"], "600 tokens do not fit the model's context of 512"),
        (["tokenize", str(tmp_path / "model_dir"), "x"], "is a directory"),
        (["models", "pull", "http://[::1"], "is not a valid URL"),
    ]


def test_bad_input_is_one_line_exit_1(capsys, tmp_path):
    for args, says in _bad_inputs(tmp_path):
        code, out, err = cli(capsys, *args)
        assert code == 1, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("chord-chat: error:"), (args, err)
        assert says in lines[0], (args, lines[0])


@pytest.mark.parametrize("content", [b"garbage\x00\xff{{{", b'{"models": {"x": {"name": "x", "path": 5}}}',
                                     b'{"models": {}, "discovery": "x"}'])
def test_a_damaged_library_index_is_one_line(capsys, tmp_path, monkeypatch, content):
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))
    index = tmp_path / "home" / "data" / "library.json"
    index.parent.mkdir(parents=True)
    index.write_bytes(content)
    code, _, err = cli(capsys, "models", "list")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "library index is damaged" in err and "library.json" in err


def test_a_chord_home_that_is_a_file_is_one_line(capsys, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("not a directory")
    monkeypatch.setenv("CHORD_HOME", str(home))
    code, _, err = cli(capsys, "models", "list")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "cannot create this directory" in err and "check CHORD_HOME" in err


def test_an_unexpected_exception_is_still_one_line(capsys, monkeypatch):
    import chord_core.cli.tokenize_cmd as tokenize_cmd

    def boom(args):
        raise RuntimeError("something broke")

    monkeypatch.setattr(tokenize_cmd, "run", boom)
    monkeypatch.delenv("CHORD_DEBUG", raising=False)
    code, _, err = cli(capsys, "tokenize", TINY, "x")
    assert code == 1
    assert err.strip() == ("chord-chat: internal error: RuntimeError: something broke "
                           "(set CHORD_DEBUG=1 for the traceback)")


def test_perplexity_matches_llama_cpp_scoring(capsys, smollm_path, smollm_ref, tmp_path):
    """llama-perplexity scores the second half of each 512-token chunk; on the
    reference passage (SmolLM2 adds no BOS, so the chunk is exactly the
    reference ids) that is llama.cpp's own next-token log-probs 256..510."""
    import numpy as np

    cases = json.loads((Path(__file__).parent / "fixtures" / "reference" / "cases.json").read_text())
    text = tmp_path / "passage.txt"
    text.write_text(cases["passage"], encoding="utf-8")
    code, out, _ = cli(capsys, "perplexity", smollm_path, text, "--ctx", "512")
    assert code == 0 and "Final estimate: PPL = " in out
    first_chunk = float(out.split("[1]")[1].split()[0])  # the passage has 4 chunks; the reference covers 1
    want = float(np.exp(-np.mean(smollm_ref["passage"]["next_logprob"][256:511])))
    ppl = first_chunk
    assert abs(ppl - want) / want <= 0.005, (ppl, want)


def test_perplexity_too_short_is_one_line_error(capsys, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("short")
    code, _, err = cli(capsys, "perplexity", TINY, text)
    assert code == 1 and "need at least 512 tokens" in err and len(err.strip().splitlines()) == 1


def test_ctx_above_the_training_context_warns_naming_both_numbers(capsys, tmp_path):
    code, _, err = cli(capsys, "run", TINY, "hi", "--ctx", "1024", "-n", "1")
    warning = [line for line in err.splitlines() if "warning" in line]
    assert code == 0 and len(warning) == 1 and "1024" in warning[0] and "training context of 512" in warning[0]
    text = tmp_path / "t.txt"
    text.write_text("one two three four five six seven eight nine ten " * 60)
    code, _, err = cli(capsys, "perplexity", TINY, text, "--ctx", "600")
    assert code == 0 and "--ctx 600 is above" in err
    _, _, err = cli(capsys, "run", TINY, "hi", "--ctx", "512", "-n", "1")
    assert "warning" not in err


def test_chat_with_an_unknown_model_exits_1_before_the_ui_opens(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("chord_core.library.discovery.installed_distributions", lambda: [])
    opened = []
    monkeypatch.setattr("chord_tui.launch.launch", lambda *a, **kw: opened.append(a) or 0)
    code, _, err = cli(capsys, "chat", "nosuchmodel")
    assert code == 1 and opened == [] and "'nosuchmodel'" in err and len(err.strip().splitlines()) == 1


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"chord-chat {version('chord-chat')}"


def test_bench_json_keys(capsys):
    code, out, _ = cli(capsys, "bench", TINY, "--json", "-p", "32", "-n", "8")
    res = json.loads(out)
    assert code == 0 and {"load_s", "prefill_tok_s", "decode_tok_s", "peak_rss_mb"} <= set(res)
    assert res["prefill_tokens"] == 32 and res["decode_tokens"] == 8 and res["peak_rss_mb"] > 0


def test_bench_names_the_model_by_its_library_name_with_general_name_beside_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))
    assert cli(capsys, "models", "add", TINY, "--name", "tiny-lib")[0] == 0
    code, out, _ = cli(capsys, "bench", "tiny-lib", "--json", "-p", "8", "-n", "2")
    res = json.loads(out)
    assert code == 0 and (res["model"], res["general_name"]) == ("tiny-lib", "tiny-llama")
    code, out, _ = cli(capsys, "bench", "tiny-lib", "-p", "8", "-n", "2")
    assert "model    tiny-lib (general.name: tiny-llama)" in out


def test_ctrl_c_during_run_json_still_prints_what_was_generated(capsys, monkeypatch):
    from chord_core.events import Started, TokenEvent
    from chord_core.session import ChatSession

    def stream(self, messages, settings=None, cancel=None, continue_reply=False):
        yield Started(prompt_tokens=3, reused_tokens=0, n_ctx=512)
        yield TokenEvent(id=5, piece="Hel", text="Hel", prob=0.9)
        yield TokenEvent(id=6, piece="lo", text="lo", prob=0.8)
        raise KeyboardInterrupt  # what Ctrl-C does to the main thread mid-reply

    monkeypatch.setattr(ChatSession, "stream", stream)
    code, out, err = cli(capsys, "run", TINY, "hi", "--json")
    assert code == 130 and "interrupted" in err
    res = json.loads(out)
    assert res["text"] == "Hello" and res["token_ids"] == [5, 6] and res["finish_reason"] == "interrupted"
