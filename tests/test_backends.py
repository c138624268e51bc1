"""The backend seam: choosing a backend, its errors, and the cpu backend
keeping weights in their GGUF blocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chord_core import Model
from chord_core.backend import kernels_unavailable_reason
from chord_core.errors import ChordError

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"


def test_the_compiled_kernels_were_built_by_the_install():
    # the README's install command must build them; CI runs it on a fresh machine
    assert kernels_unavailable_reason() is None


def test_auto_is_the_cpu_backend_with_the_requested_threads():
    model = Model.load(TINY / "tiny-llama-Q4_K_M.gguf", threads=3)
    assert (model.backend_name, model.threads, model.backend_notice) == ("cpu", 3, None)


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "gpu"}, "unknown backend 'gpu' (choose from auto, cpu, numpy, cuda)"),
    ({"threads": 0}, "threads must be a whole number of at least 1, got 0"),
    ({"kv_type": "q8"}, "unknown KV cache type 'q8' (choose from f32, f16)"),
])
def test_bad_engine_options_are_refused_before_the_file_is_opened(tmp_path, kwargs, message):
    with pytest.raises(ChordError) as e:
        Model.load(tmp_path / "does-not-exist.gguf", **kwargs)
    assert str(e.value) == message


def _load_in_subprocess(backend: str, env: dict) -> dict:
    code = (
        "import json, sys\n"
        "from chord_core import Model\n"
        "from chord_core.errors import ChordError\n"
        "try:\n"
        f"    m = Model.load({str(TINY / 'tiny-llama-Q4_0.gguf')!r}, backend={backend!r})\n"
        "    print(json.dumps({'backend': m.backend_name, 'notice': m.backend_notice}))\n"
        "except ChordError as e:\n"
        "    print(json.dumps({'error': str(e)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_auto_falls_back_to_numpy_and_says_why_when_the_kernels_cannot_load():
    # an ISA this CPU cannot run makes the extension's import fail, as a
    # missing or broken build would
    got = _load_in_subprocess("auto", {"CHORD_ISA": "no-such-isa"})
    assert got["backend"] == "numpy"
    assert "no-such-isa" in got["notice"] and "numpy backend" in got["notice"]
    assert "unset CHORD_ISA" in got["notice"]  # the cure for a path forced by hand, not a reinstall
    assert "\n" not in got["notice"]


def test_asking_for_cpu_without_its_kernels_is_one_line_error():
    got = _load_in_subprocess("cpu", {"CHORD_ISA": "no-such-isa"})
    assert got["error"].startswith("the cpu backend's compiled kernels are unavailable (")
    assert "--backend numpy" in got["error"]


def test_cpu_backend_keeps_weights_in_their_blocks():
    """No tensor is dequantized at load: each matrix holds the file's bytes
    (stacked parts of one type may be one copy of their rows)."""
    model = Model.load(TINY / "tiny-llama-Q4_K_M.gguf", backend="cpu")
    f = model.gguf
    lw = model.weights.layers[0]
    for m, names in ((lw.attn_qkv, ["attn_q", "attn_k", "attn_v"]), (lw.ffn_gate_up, ["ffn_gate", "ffn_up"]),
                     (lw.ffn_down, ["ffn_down"]), (lw.attn_output, ["attn_output"])):
        raws = [f.raw(f"blk.0.{n}.weight") for n in names]
        assert all(p.raw.dtype == np.uint8 for p in m.parts)
        assert {p.type_id for p in m.parts} <= {f.tensors[f"blk.0.{n}.weight"].ggml_type for n in names}
        got = np.concatenate([p.raw.reshape(-1) for p in m.parts])
        assert np.array_equal(got, np.concatenate([np.asarray(r, np.uint8).reshape(-1) for r in raws]))
    # tied output: the very same quantized table as the embedding lookup
    assert model.weights.tied and model.weights.output is model.weights.token_embd


def test_cpu_and_numpy_backends_agree_on_a_quantized_model():
    ids = list(np.load(TINY / "tiny-llama-Q4_K_M.npz")["ids"][:24])
    ref = Model.load(TINY / "tiny-llama-Q4_K_M.gguf", backend="numpy").logits(ids)
    got = Model.load(TINY / "tiny-llama-Q4_K_M.gguf", backend="cpu").logits(ids)
    # the cpu kernels round activations to 8 bits per block, as llama.cpp does
    assert np.abs(got - ref).max() <= 3e-2 * np.abs(ref).max()
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.95


def test_a_model_too_large_for_memory_is_refused_before_its_weights_are_read(tmp_path):
    from chord_core.errors import ModelTooLargeError

    path = TINY / "tiny-llama-Q4_K_M.gguf"
    with pytest.raises(ModelTooLargeError) as e:
        Model.load(path, backend="cpu", memory_available=10_000_000)
    msg = str(e.value)
    assert msg.startswith(f"{path}: needs about ") and "only 10.0 MB is available; try" in msg
    assert "\n" not in msg
    # the same file loads when the memory is there
    assert Model.load(path, backend="cpu", memory_available=10**12).backend_name == "cpu"
