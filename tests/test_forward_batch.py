"""A batched decode step equals one decode step per sequence.

``Model.eval_batch`` runs one new token for each of B sequences, each with
its own cache at its own position, through one product per weight. Every
row must be what that sequence's own one-token ``eval`` gives: bit for bit
on the cpu backend (its kernels give a row the same bits for any row
count), within 1e-4 on the numpy reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chord_core.model import Model

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
DEPTHS = (3, 17, 9, 30, 1)  # each sequence's context before the step: all at different positions
STEPS = 3  # batched steps after the prompts, so the caches grow through batched writes too


def _prompts(model: Model, n: int) -> list[list[int]]:
    rng = np.random.default_rng(11)
    return [[int(i) for i in rng.integers(3, model.n_vocab, DEPTHS[b % len(DEPTHS)] + STEPS)] for b in range(n)]


def _separate_and_batched(model: Model, prompts: list[list[int]], n_ctx: int = 128):
    """Logits of STEPS decode steps per sequence: each alone, and all batched."""
    alone = []
    for ids in prompts:
        cache = model.new_cache(n_ctx)
        depth = len(ids) - STEPS
        model.eval(ids[:depth], cache)
        alone.append([model.eval([t], cache) for t in ids[depth:]])
    caches = [model.new_cache(n_ctx) for _ in prompts]
    for ids, cache in zip(prompts, caches):
        model.eval(ids[:len(ids) - STEPS], cache)
    batched = [model.eval_batch([ids[len(ids) - STEPS + j] for ids in prompts], caches) for j in range(STEPS)]
    for ids, cache in zip(prompts, caches):
        assert cache.tokens == ids
    return np.array(alone).transpose(1, 0, 2), np.array(batched)  # both (STEPS, B, n_vocab)


ARCHS = ["tiny-llama-Q4_K_M.gguf", "tiny-qwen2-F32.gguf", "tiny-qwen3-F32.gguf", "tiny-gemma2-F32.gguf",
         "tiny-gemma3-F32.gguf", "tiny-llama3-ropefreqs-F32.gguf"]


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("n_seq", [1, 2, 5])
def test_a_batched_step_gives_each_sequence_the_bits_of_its_own_step_on_cpu(name, n_seq):
    model = Model.load(TINY / name, backend="cpu", threads=2)
    alone, batched = _separate_and_batched(model, _prompts(model, n_seq))
    assert np.array_equal(alone, batched)


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("n_seq", [1, 2, 5])
def test_a_batched_step_matches_separate_steps_on_numpy(name, n_seq):
    model = Model.load(TINY / name, backend="numpy")
    alone, batched = _separate_and_batched(model, _prompts(model, n_seq))
    scale = np.abs(alone).max()
    assert np.abs(batched - alone).max() <= 1e-4 * scale


def test_a_batched_step_past_a_sliding_window_matches_separate_steps():
    # tiny gemma's window is 8 keys: sequences at 3, 17 and 30 tokens sit before and past its edge
    for backend in ("cpu", "numpy"):
        model = Model.load(TINY / "tiny-gemma2-F32.gguf", backend=backend, threads=2)
        assert model.cfg.sliding_window and any(model.cfg.swa_layers)
        alone, batched = _separate_and_batched(model, _prompts(model, 4))
        assert np.allclose(batched, alone, rtol=0, atol=1e-4 * np.abs(alone).max()), backend


def test_a_batched_step_on_smollm2_gives_the_bits_of_separate_steps(smollm_path):
    model = Model.load(smollm_path, backend="cpu", threads=2)
    texts = ["The capital of France is", "def fibonacci(n):\n    if n <", "Once upon a time, in a land far away, there"]
    prompts = [model.tokenize(t) for t in texts]
    alone, batched = _separate_and_batched(model, prompts)
    assert np.array_equal(alone, batched)


def test_a_batch_naming_one_cache_twice_is_refused():
    model = Model.load(TINY / "tiny-llama-Q4_K_M.gguf", backend="numpy")
    cache = model.new_cache(32)
    model.eval([5, 6], cache)
    with pytest.raises(ValueError, match="twice"):
        model.eval_batch([7, 8], [cache, cache])
    assert cache.tokens == [5, 6]
