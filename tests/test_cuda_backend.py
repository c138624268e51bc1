"""The cuda backend. On a machine without CuPy or a GPU (CI): the one-line
errors, the block layout, the memory check and the kernel sources. With a
GPU: the kernels against NumPy and the tiny fixtures against llama.cpp
(benchmarks/cuda_check.py measures the rest on a lent H100)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from chord_core.backend import cuda_unavailable_reason, make_backend
from chord_core.backend.cuda import act_q8, layouts, sources
from chord_core.backend.cuda.memory import (check_device_memory, estimate_device, layer_of,
                                            resolve_gpu_layers)
from chord_core.config import config_from_metadata
from chord_core.errors import ChordError, ModelTooLargeError
from chord_core.gguf_file import open_gguf
from chord_core.quants import REGISTRY, dequantize
from chord_tui.cli import main

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
NO_GPU = cuda_unavailable_reason()
needs_gpu = pytest.mark.skipif(NO_GPU is not None, reason=f"no GPU for the cuda backend here: {NO_GPU}")


@pytest.mark.skipif(NO_GPU is None, reason="CuPy and a GPU are present here")
def test_cuda_backend_without_cupy_or_gpu_is_one_line_naming_what_is_missing():
    with pytest.raises(ChordError) as e:
        make_backend("cuda")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("the cuda backend is unavailable: ")
    assert ("CuPy is not installed" in msg and "chord-chat[cuda]" in msg and "cupy-cuda13x" in msg) or "GPU" in msg


@pytest.mark.skipif(NO_GPU is None, reason="CuPy and a GPU are present here")
def test_run_with_backend_cuda_without_cupy_or_gpu_says_so_in_one_line(capsys):
    code = main(["run", str(TINY / "tiny-llama-Q4_0.gguf"), "hello", "--backend", "cuda", "-n", "2"])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and "cuda backend is unavailable" in err, err


def _cupy_like(count=None, error=None):
    def get_count():
        if error is not None:
            raise error
        return count
    return SimpleNamespace(cuda=SimpleNamespace(runtime=SimpleNamespace(getDeviceCount=get_count)))


def test_cuda_unavailable_reason_names_a_missing_gpu_or_driver():
    assert cuda_unavailable_reason(_cupy_like(count=1)) is None
    assert cuda_unavailable_reason(_cupy_like(count=0)) == "no CUDA GPU found"
    reason = cuda_unavailable_reason(_cupy_like(error=RuntimeError("cudaErrorNoDevice: no CUDA-capable\ndevice")))
    assert reason == "no usable CUDA GPU (cudaErrorNoDevice: no CUDA-capable device)"


def test_gpu_layers_is_refused_off_the_cuda_backend(capsys):
    code = main(["run", str(TINY / "tiny-llama-Q4_0.gguf"), "hello", "--backend", "cpu", "--gpu-layers", "2"])
    assert code != 0
    assert "--gpu-layers is for --backend cuda" in capsys.readouterr().err
    with pytest.raises(ChordError, match="--gpu-layers is for --backend cuda"):
        make_backend("cpu", gpu_layers=2)


@pytest.mark.parametrize("type_id", sorted(layouts.PLANES))
def test_planes_hold_the_block_bytes_once_each_aligned_to_its_size(type_id):
    elems, nbytes = layouts.block_shape(type_id)
    fields = layouts.PLANES[type_id]
    assert sum(size for _, size in fields) == nbytes
    covered = sorted(b for off, size in fields for b in range(off, off + size))
    assert covered == list(range(nbytes))
    rng = np.random.default_rng(type_id)
    raw = rng.integers(0, 256, (3, 4 * nbytes), dtype=np.uint8)
    planes = layouts.split_planes(raw, type_id, 3, 4 * elems)
    assert all(p.flags.c_contiguous and p.shape[:2] == (3, 4) for p in planes)
    assert (layouts.join_planes(planes, type_id) == raw).all()


def test_types_without_a_decoder_become_f16_of_their_values():
    assert set(layouts.PLANES) == set(sources.DECODERS)
    rng = np.random.default_rng(0)
    for type_id in set(REGISTRY) - set(layouts.PLANES):
        assert layouts.device_type(type_id) == layouts.F16_ID
    raw = rng.standard_normal((2, 64)).astype(np.float32).view(np.uint8)
    f16 = layouts.to_f16_rows(raw, 0, 2, 64).view(np.float16)
    assert (f16 == dequantize(raw, 0, (2, 64)).astype(np.float16)).all()


def test_every_decoder_and_head_dim_is_instantiated_from_the_sources():
    mods = sources.modules()
    matmul_src, matmul_names = mods["matmul"]
    for t in sources.DECODERS:
        assert sources.dequant_name(t) in matmul_names
        assert all(sources.gemv_name(t, s) in matmul_names for s in sources.GEMV_SHAPES)
        assert f"struct {sources.DECODERS[t]} " in matmul_src  # the header is inlined
    q8_src, q8_names = mods["matmul_q8"]
    assert [sources.gemv_q8_name(t, s) for t in sources.Q8_DECODERS for s in sources.GEMV_Q8_SHAPES] == q8_names
    assert all(f"struct {sources.Q8_DECODERS[t]} " in q8_src for t in sources.Q8_DECODERS)
    ops_src, ops_names = mods["layer_ops"]
    assert [sources.attend_name(d) for d in sources.HEAD_DIMS] == ops_names
    for module, names in sources.PLAIN_KERNELS.items():
        for name in names:
            assert f'extern "C" __global__ void {name}(' in mods[module][0]


def test_activations_in_two_levels_stand_for_x_within_a_512th_of_their_group_step():
    rng = np.random.default_rng(3)
    cols = 256
    x = (rng.standard_normal((3, cols)) * np.exp(rng.uniform(-6, 6, (3, cols // 32))).repeat(32, 1)).astype(np.float32)
    x[1, 64:96] = 0  # a silent group stays exactly zero
    xq = act_q8.quantize_rows(x)
    assert xq.shape == (3, act_q8.row_bytes(cols)) == (3, 2 * cols + 8 * cols // 32)
    got = act_q8.dequantize_rows(xq, cols)
    step = np.abs(x).reshape(3, -1, 32).max(2).repeat(32, 1) / 127  # d1 of each element's group
    assert (np.abs(got - x) <= step / 256 * 1.01).all()  # d1 / 512 at most, d1 / 256 where q2 clamps
    assert (got[1, 64:96] == 0).all()
    ds = xq[:, 2 * cols:].copy().view(np.float32).reshape(3, -1, 2)
    q = 256 * xq[:, :cols].view(np.int8).astype(np.int64) + xq[:, cols:2 * cols].view(np.int8)
    assert (ds[:, :, 1] == q.reshape(3, -1, 32).sum(2)).all()  # S: each group's integer sum, exact


def test_gpu_layers_resolve_to_all_by_default_and_are_checked():
    assert resolve_gpu_layers(None, 30) == 30
    assert resolve_gpu_layers(99, 30) == 30
    assert resolve_gpu_layers(4, 30) == 4
    with pytest.raises(ChordError, match="--gpu-layers must be a whole number"):
        resolve_gpu_layers(-1, 30)
    assert layer_of("blk.12.ffn_down.weight") == 12 and layer_of("output.weight") is None


def test_device_memory_check_refuses_in_one_line_and_names_the_layers_that_fit():
    f = open_gguf(str(TINY / "tiny-llama-Q4_K_M.gguf"))
    try:
        cfg = config_from_metadata(f.metadata, "tiny")
        est = estimate_device(f, cfg, 512, cfg.n_layer, 512)
        assert len(est.per_layer) == cfg.n_layer and est.output > 0
        check_device_memory(est, "m.gguf", "GPU X", est.total)  # exactly enough: fine
        free = est.scratch + est.per_layer[0] + est.per_layer[1] // 2  # room for one layer
        with pytest.raises(ModelTooLargeError) as e:
            check_device_memory(est, "m.gguf", "GPU X", free)
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith("m.gguf: needs about ")
        assert "GPU X has" in msg and f"--gpu-layers 1 (of {cfg.n_layer})" in msg
        with pytest.raises(ModelTooLargeError, match="no layer fits: use --backend cpu"):
            check_device_memory(est, "m.gguf", "GPU X", est.scratch // 2)
    finally:
        f.close()


# -- on a GPU ----------------------------------------------------------------------

@needs_gpu
def test_every_kernel_matches_numpy_on_random_inputs():
    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    import cuda_kernel_checks

    failed = [r for r in cuda_kernel_checks.run_all(seed=1) if not r[3]]
    assert not failed, failed


@needs_gpu
@pytest.mark.parametrize("name", ["tiny-llama-Q4_K_M", "tiny-gemma3-F32", "tiny-qwen2-F32"])
def test_tiny_fixture_logits_match_llama_cpp_on_the_gpu(name):
    from chord_core.model import Model

    z = np.load(TINY / f"{name}.npz")
    got = Model.load(TINY / f"{name}.gguf", backend="cuda").logits(list(z["ids"]))
    ref = z["logits"]
    tol = 2e-3 if "F32" in name else 5e-2
    assert np.abs(got - ref).max() / np.abs(ref).max() <= tol
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.95
