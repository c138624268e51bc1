"""A short chunk's logits equal one-token decode steps bit for bit.

Speculative decoding verifies k guessed tokens in one forward; greedy
speculation gives exactly the tokens of plain decoding only if every row of
that forward equals the decode step at its position, on every backend, past
a sliding window's edge and where a decode step splits its keys over threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chord_core.model import Model

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
CHUNKS = (1, 3, 5, 2, 6, 3)  # 20 tokens verified in chunks of these sizes


def _steps_and_chunks(model: Model, ids: list[int], depth: int):
    stepped, chunked = model.new_cache(depth + 64), model.new_cache(depth + 64)
    model.eval(ids[:depth], stepped)
    model.eval(ids[:depth], chunked)
    rest = ids[depth:depth + sum(CHUNKS)]
    steps = [model.eval([t], stepped) for t in rest]
    rows, i = [], 0
    for k in CHUNKS:
        rows.extend(model.eval(rest[i:i + k], chunked, all_logits=True))
        i += k
    return steps, rows


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("name,threads,depth", [
    ("tiny-llama-Q4_K_M.gguf", 1, 10),
    ("tiny-gemma2-F32.gguf", 1, 10),  # past the 8-key window: each step's keys start elsewhere
    ("tiny-gemma3-F32.gguf", 2, 10),
    ("tiny-gemma3-F32.gguf", 4, 600),  # 2 kv heads < 4 threads: a decode step splits its 600 keys
])
def test_a_verify_chunk_gives_the_bits_of_decode_steps(name, threads, depth, backend):
    model = Model.load(TINY / name, backend=backend, threads=threads)
    ids = [int(i) for i in np.random.default_rng(7).integers(3, model.n_vocab, depth + 40)]
    steps, rows = _steps_and_chunks(model, ids, depth)
    differing = [i for i, (a, b) in enumerate(zip(steps, rows)) if not np.array_equal(a, b)]
    assert differing == []


def test_a_verify_chunk_gives_the_bits_of_decode_steps_past_gemmas_window(gemma_path):
    # Gemma 3's 512-key window spans several key tiles, and its one kv head
    # leaves a second thread idle, so a decode step there splits its keys
    model = Model.load(gemma_path, backend="cpu", threads=2)
    ids = model.tokenize("The quick brown fox jumps over the lazy dog. " * 60)
    steps, rows = _steps_and_chunks(model, ids, 520)
    differing = [i for i, (a, b) in enumerate(zip(steps, rows)) if not np.array_equal(a, b)]
    assert differing == []
