"""The memory check before loading: an estimate near what a model takes, and
a one-line refusal naming the file, both numbers and what to try."""

from __future__ import annotations

from pathlib import Path

import pytest

from chord_core.config import config_from_metadata
from chord_core.errors import ChordError, ModelTooLargeError
from chord_core.gguf_file import open_gguf
from chord_core.memory_estimate import check_memory, estimate_for_file, estimate_memory
from chord_core.model_facts import format_size
from chord_tui.cli import main

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"
MB = 1_000_000


def _estimate(path, n_ctx=4096, kv_type="f32", backend="cpu"):
    with open_gguf(path) as f:
        return estimate_memory(f, config_from_metadata(f.metadata, str(path)), n_ctx, kv_type, backend)


@pytest.mark.parametrize("model", ["smollm_path", "gemma_path"])
def test_the_estimate_of_a_real_model_is_its_file_plus_cache_and_a_little_scratch(model, request):
    path = request.getfixturevalue(model)
    size = path.stat().st_size
    cpu = _estimate(path, backend="cpu")
    assert 0.95 * size < cpu.weights < 1.1 * size  # the blocks as stored, read through the mmap
    assert 100 * MB < cpu.scratch < 400 * MB
    assert cpu.total == cpu.weights + cpu.kv_cache + cpu.scratch
    numpy = _estimate(path, backend="numpy")
    assert numpy.weights > 4 * size  # every weight as F32
    assert numpy.kv_cache == cpu.kv_cache


def test_an_f16_cache_takes_half_and_grows_with_the_context(smollm_path):
    f32 = _estimate(smollm_path, n_ctx=2048, kv_type="f32")
    assert _estimate(smollm_path, n_ctx=2048, kv_type="f16").kv_cache * 2 == f32.kv_cache
    assert _estimate(smollm_path, n_ctx=4096).kv_cache == 2 * f32.kv_cache
    # SmolLM2: 30 layers, 3 KV heads of 64 (keys and values), 4 bytes each
    assert f32.kv_cache == 2048 * 30 * 3 * (64 + 64) * 4


def test_a_model_too_large_for_the_memory_available_is_one_line_with_both_numbers(smollm_path):
    est = _estimate(smollm_path, backend="cpu")
    with pytest.raises(ModelTooLargeError) as err:
        check_memory(est, str(smollm_path), available=200 * MB)
    assert isinstance(err.value, ChordError)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{smollm_path}: needs about ")
    assert f"needs about {format_size(est.total)}" in text and "only 200.0 MB is available" in text
    assert "a smaller --ctx (now 4096)" in text and "--kv-type f16" in text and "a smaller quant" in text


def test_the_numpy_backend_is_told_to_try_the_cpu_backend(smollm_path):
    est = _estimate(smollm_path, backend="numpy")
    with pytest.raises(ModelTooLargeError, match=r"try --backend cpu"):
        check_memory(est, str(smollm_path), available=est.total - 1)


def test_a_model_that_fits_passes(smollm_path):
    est = _estimate(smollm_path)
    check_memory(est, str(smollm_path), available=est.total)


def test_estimate_for_file_uses_the_default_context():
    est = estimate_for_file(str(TINY), backend="numpy")
    assert (est.n_ctx, est.kv_type, est.backend) == (512, "f32", "numpy")  # the tiny model's training context


def test_models_show_prints_the_estimate(capsys):
    assert main(["models", "show", str(TINY)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("memory:")]
    assert len(lines) == 1 and "at a context of 512" in lines[0] and "weights" in lines[0]
    assert "KV cache" in lines[0] and "scratch" in lines[0]
