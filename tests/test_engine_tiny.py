"""Logits of every tiny fixture against llama.cpp's, at every position.

Tolerances are the reference README's: F32 models max |dlogit| / max |logit|
<= 2e-3 with the same argmax everywhere; quantized ones <= 5e-2 with argmax
agreement >= 0.95 (llama.cpp quantizes activations to Q8 inside quantized
matmuls, we keep them in F32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chord_core import Model

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
F32_MODELS = sorted(p.name for p in TINY.glob("tiny-*-F32.gguf"))
QUANT_MODELS = sorted(p.name for p in TINY.glob("tiny-llama-*.gguf") if not p.name.endswith("-F32.gguf"))


# every fidelity bar holds on both backends: the compiled default and the NumPy reference
BACKENDS = ["cpu", "numpy"]


def _check(name: str, backend: str):
    model = Model.load(TINY / name, backend=backend)
    ref = np.load(TINY / name.replace(".gguf", ".npz"))
    ids, want = ref["ids"], ref["logits"]
    assert model.tokenize(
        "The quick brown fox jumps over the lazy dog. In 1887, she wrote: "
        "\"Numbers like 3.14159 and words like naïve café travel well.\" def f(x):\n    return x * 2\n"
    )[:5] == list(ids[:5])
    got = model.logits(ids)
    assert got.shape == want.shape and got.dtype == np.float32
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    agree = float((got.argmax(1) == want.argmax(1)).mean())
    return rel, agree


def test_fixture_sets_are_complete():
    assert len(F32_MODELS) == 7 and len(QUANT_MODELS) == 12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", F32_MODELS)
def test_f32_architectures_match_llama_cpp(name, backend):
    rel, agree = _check(name, backend)
    assert rel <= 2e-3, rel
    assert agree == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", QUANT_MODELS)
def test_quant_types_match_llama_cpp(name, backend):
    rel, agree = _check(name, backend)
    assert rel <= 5e-2, rel
    assert agree >= 0.95, agree


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["tiny-gemma3-F32.gguf", "tiny-qwen2-F32.gguf", "tiny-llama-Q4_K_M.gguf",
                                  "tiny-llama-Q4_1.gguf", "tiny-llama-Q6_K.gguf"])
def test_prefill_then_decode_equals_all_positions(name, backend):
    """Prefill a prefix, then one token at a time: same logits as one pass.
    gemma3 has an 8-token sliding window, so the decode steps cross it."""
    model = Model.load(TINY / name, backend=backend)
    ids = list(np.load(TINY / name.replace(".gguf", ".npz"))["ids"][:40])
    full = model.logits(ids)
    cache = model.new_cache(64)
    rows = [model.eval(ids[:10], cache, all_logits=True)]
    rows += [model.eval([t], cache, all_logits=True) for t in ids[10:]]
    inc = np.concatenate(rows)
    assert cache.n_past == len(ids)
    np.testing.assert_allclose(inc, full, rtol=1e-4, atol=1e-4 * np.abs(full).max())


def test_truncate_and_re_evaluate_gives_same_logits():
    model = Model.load(TINY / "tiny-llama-F32.gguf")
    ids = list(np.load(TINY / "tiny-llama-F32.npz")["ids"][:30])
    cache = model.new_cache(64)
    first = model.eval(ids, cache)
    cache.truncate(12)
    assert cache.tokens == ids[:12]
    again = model.eval(ids[12:], cache)
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-5)


def test_trace_sees_the_residual_stream_after_every_layer():
    """forward(trace=) hands out each layer's output (llama.cpp's l_out-N);
    the last one, through the output norm and head, gives the logits."""
    from chord_core.forward import forward, rms_norm

    model = Model.load(TINY / "tiny-gemma3-F32.gguf", backend="numpy")  # F32 arrays to multiply by hand
    ids = list(np.load(TINY / "tiny-gemma3-F32.npz")["ids"][:12])
    seen = []
    logits = forward(model.backend, model.cfg, model.weights, model.new_cache(16), ids, all_logits=True,
                     trace=lambda il, x: seen.append((il, x.copy())))
    assert [il for il, _ in seen] == list(range(model.cfg.n_layer))
    assert all(x.shape == (len(ids), model.cfg.n_embd) for _, x in seen)
    assert not np.allclose(seen[0][1], seen[-1][1])
    head = rms_norm(seen[-1][1], model.weights.output_norm, model.cfg.rms_eps) @ model.weights.output.T
    if model.cfg.final_softcap:
        head = np.tanh(head / model.cfg.final_softcap) * model.cfg.final_softcap
    np.testing.assert_allclose(head, logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())


def test_tied_and_untied_output():
    tied = Model.load(TINY / "tiny-llama-F32.gguf")
    untied = Model.load(TINY / "tiny-llama-untied-F32.gguf")
    assert tied.weights.tied and not untied.weights.tied


def test_split_model_loads_as_one(tmp_path):
    """A gguf-split model (three shards written by gguf's own splitter) gives
    the same logits as the whole file."""
    import gguf
    from gguf_rewrite import rewrite_f32_gguf

    rewrite_f32_gguf(TINY / "tiny-llama-F32.gguf", gguf.GGUFWriter(str(tmp_path / "split.gguf"), "llama",
                                                                   split_max_tensors=8))
    shards = sorted(tmp_path.glob("split-*-of-*.gguf"))
    assert len(shards) >= 2
    ids = list(np.load(TINY / "tiny-llama-F32.npz")["ids"][:12])
    whole = Model.load(TINY / "tiny-llama-F32.gguf").logits(ids)
    split = Model.load(shards[0])
    np.testing.assert_allclose(split.logits(ids), whole, rtol=1e-6, atol=1e-6)
    assert split.info.file_size == sum(p.stat().st_size for p in shards)
