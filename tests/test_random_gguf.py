"""benchmarks/make_random_gguf.py: random-weight models at real shapes that
chord-chat loads and runs, with llama.cpp's tensor types for the file type."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chord_core.model import Model
from chord_core.quants import dequantize

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


sys.path.insert(0, str(BENCHMARKS))  # scripts, not a package: make_random_gguf imports random_blocks beside it
random_blocks = importlib.import_module("random_blocks")
make_random_gguf = importlib.import_module("make_random_gguf")


@pytest.mark.parametrize("type_name", ["Q4_0", "Q8_0", "Q4_K", "Q6_K"])
def test_random_blocks_dequantize_to_weights_of_the_asked_spread(type_name):
    type_id, _, _ = random_blocks.GENERATORS[type_name]
    sigma = 0.02
    raw = random_blocks.random_tensor_bytes(np.random.default_rng(1), type_name, 256 * 512, sigma)
    w = dequantize(raw, type_id, (512, 256))
    assert np.isfinite(w).all()
    assert abs(w.std() / sigma - 1) < 0.15
    assert abs(w.mean()) < 0.15 * sigma  # centred: no bias shared by every weight of a row


def _types(shape, quant) -> dict[str, str]:
    return {t.name: t.type_name for t in make_random_gguf.tensor_plan(shape, quant)}


def test_q4_k_m_follows_llama_cpps_recipe():
    # llama.cpp (src/llama-quant.cpp) gives attn_v and ffn_down Q6_K in the first and last
    # eighth of the layers and every third layer between: for 16 layers, these
    more_bits = {0, 1, 4, 7, 10, 13, 14, 15}
    types = _types(make_random_gguf.PRESETS["llama-3.2-1b"], "Q4_K_M")
    assert types["token_embd.weight"] == "Q6_K" and "output.weight" not in types  # tied: the embedding is the output
    for i in range(16):
        want = "Q6_K" if i in more_bits else "Q4_K"
        assert (types[f"blk.{i}.attn_v.weight"], types[f"blk.{i}.ffn_down.weight"]) == (want, want), i
        assert {types[f"blk.{i}.{n}.weight"] for n in ("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up")} == {"Q4_K"}
        assert types[f"blk.{i}.attn_norm.weight"] == "F32"
    mistral = _types(make_random_gguf.PRESETS["mistral-7b"], "Q4_K_M")
    assert (mistral["token_embd.weight"], mistral["output.weight"]) == ("Q4_K", "Q6_K")
    assert sum(t == "Q6_K" for n, t in mistral.items() if "attn_v" in n) == 16  # half of 32 layers


def test_q4_0_and_q8_0_outputs():
    tiny = make_random_gguf.PRESETS["tiny"]
    assert {t for n, t in _types(tiny, "Q4_0").items() if n != "token_embd.weight" and "norm" not in n} == {"Q4_0"}
    assert _types(tiny, "Q4_0")["token_embd.weight"] == "Q6_K"  # tied output, as llama.cpp makes it
    assert {t for n, t in _types(tiny, "Q8_0").items() if "norm" not in n} == {"Q8_0"}


@pytest.mark.parametrize("arch, quant", [("llama", "Q4_K_M"), ("qwen2", "Q4_0"), ("qwen3", "Q8_0")])
def test_a_generated_model_loads_tokenizes_and_gives_finite_spread_logits(tmp_path, arch, quant):
    import dataclasses

    shape = dataclasses.replace(make_random_gguf.PRESETS["tiny"], arch=arch)
    path = tmp_path / "m.gguf"
    make_random_gguf.write_model(path, shape, quant, "random tiny")
    model = Model.load(path, backend="numpy")
    assert (model.cfg.arch, model.info.quant, model.n_vocab) == (arch, quant, shape.n_vocab)
    text = "Hello world, the quick brown fox!"
    ids = model.tokenize(text)
    assert ids[0] == 1 and model.detokenize(ids[1:]) == text
    logits = model.logits(ids)
    assert np.isfinite(logits).all()
    assert 1.0 < logits.std() < 6.0  # a trained model's spread, not flat and not blown up


def test_the_command_writes_the_file_named_after_preset_and_quant(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "make_random_gguf.py"), "--preset", "tiny",
                           "--quant", "Q8_0", "--n-layer", "3", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "random-tiny-custom-Q8_0.gguf"
    assert path.is_file() and str(path) in done.stdout and not list(tmp_path.glob("*.part"))
    model = Model.load(path, backend="numpy")
    assert model.cfg.n_layer == 3 and model.info.general_name == "random weights, tiny shape"


def test_a_shape_the_blocks_cannot_hold_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "make_random_gguf.py"), "--preset", "tiny",
                           "--n-embd", "320", "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode != 0 and not list(tmp_path.iterdir())
    assert done.stderr.strip() == ("make_random_gguf: n_embd = 320 is not a multiple of 256, "
                                   "the block size of Q4_K_M's types")
