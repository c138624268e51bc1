"""Weights repacked at load (csrc/kernels/rows_pack.h) give every product
the bits of the file's blocks as read, on every kernel path and T.

The avx512 path with VNNI multiplies the 32-element types from the packed
form; the other paths have no kernels for it and read the blocks as they
are, so the same call must give the same bits there too. CHORD_PACKED=0
turns packing off for a whole model: logits must not change.
"""

from __future__ import annotations

import numpy as np
import pytest

import chord_core._kernels as K
from chord_core.backend.cpu_backend import PACKED_ENV, CpuBackend
from chord_core.config import config_from_metadata
from chord_core.forward import forward_batch
from chord_core.gguf_file import GGUFFile
from chord_core.memory_estimate import estimate_memory
from chord_core.model import Model
from chord_core.quants import dequantize
from test_kernels import TYPES, isa, random_weights  # noqa: F401 (isa: the fixture, every kernel path)

PACKED_TYPES = (2, 3, 6, 7, 8)  # Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
PACKED_IDS = [TYPES[t][0] for t in PACKED_TYPES]


# packed bytes per row and block of 32: 4 per dword the type's kernels read (rows_pack.c)
PACKED_BLOCK_BYTES = {2: 20, 3: 20, 6: 24, 7: 24, 8: 36}


def pack(raw, type_id, rows, cols):
    """pack_rows works on every path (packed_size says which paths use it)."""
    out = np.empty(rows * cols // 32 * PACKED_BLOCK_BYTES[type_id], np.uint8)
    K.pack_rows(raw, type_id, rows, cols, out)
    return out


def products(raw, type_id, rows, cols, x, threads, packed=None):
    out = np.empty((x.shape[0], rows), np.float32)
    K.matmul(raw, type_id, rows, cols, x, out, threads, packed)
    return out


@pytest.mark.parametrize("type_id", PACKED_TYPES, ids=PACKED_IDS)
@pytest.mark.parametrize("rows,cols,threads", [(16, 64, 1), (48, 96, 2), (160, 320, 3), (576, 192, 2)])
def test_packed_products_equal_those_of_the_blocks_as_read_bit_for_bit(isa, type_id, rows, cols, threads):
    rng = np.random.default_rng(type_id * 1000 + rows)
    raw = random_weights(type_id, rows, cols, rng)
    packed = pack(raw, type_id, rows, cols)
    for T in (1, 2, 3, 4, 5, 8, 9, 17, 64, 130):  # one token, the 32-row kernels, 8-token passes, prefill
        x = rng.standard_normal((T, cols), dtype=np.float32)
        want = products(raw, type_id, rows, cols, x, threads)
        got = products(raw, type_id, rows, cols, x, threads, packed)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), f"T={T}"


@pytest.mark.parametrize("type_id", PACKED_TYPES, ids=PACKED_IDS)
def test_packed_products_match_the_numpy_reference(isa, type_id):
    rows, cols, T = 64, 256, 3
    rng = np.random.default_rng(type_id)
    raw = random_weights(type_id, rows, cols, rng)
    x = rng.standard_normal((T, cols), dtype=np.float32)
    got = products(raw, type_id, rows, cols, x, 2, pack(raw, type_id, rows, cols))
    w = dequantize(raw.reshape(-1), type_id, (rows, cols)).astype(np.float64)
    want = x.astype(np.float64) @ w.T
    # the activations' two 8-bit levels leave about 1/32512 of a block's largest |x| per element
    bound = np.abs(x).max() / 32512 * np.abs(w).sum(axis=1) + 2e-5 * (np.abs(x) @ np.abs(w).T)
    assert (np.abs(got - want) <= bound).all()


def test_only_the_32_element_types_in_whole_groups_of_16_rows_are_packed():
    before = K.isa()
    try:
        K.set_isa(K.isas()[0])
        vnni = K.packed_size(3, 16, 32) > 0  # the avx512 path with VNNI has the kernels
        for type_id in PACKED_TYPES:
            assert (K.packed_size(type_id, 32, 64) > 0) == vnni
            assert K.packed_size(type_id, 24, 64) == 0  # not whole groups of 16
        for type_id in (0, 1, 12, 14):  # F32, F16, Q4_K, Q6_K
            assert K.packed_size(type_id, 32, 256) == 0
        for name in K.isas():
            if name != "avx512":  # avx2 and portable read the blocks as they are
                K.set_isa(name)
                assert K.packed_size(3, 32, 64) == 0
    finally:
        K.set_isa(before)
    raw = random_weights(3, 32, 64, np.random.default_rng(0))
    assert len(pack(raw, 3, 32, 64)) == 32 * 2 * 20  # Q4_1: 5 dwords per row and block, as its blocks


def test_a_packed_form_of_the_wrong_size_or_type_fails_with_one_line():
    raw = random_weights(3, 32, 64, np.random.default_rng(0))
    x = np.ones((1, 64), np.float32)
    with pytest.raises(ValueError, match=r"^matmul: packed has 10 bytes, not the 1280 of 32 rows packed \(Q4_1, 64 cols\)$"):
        products(raw, 3, 32, 64, x, 1, b"0123456789")
    with pytest.raises(ValueError, match=r"^matmul: packed is for Q4_0, .* rows a multiple of 16; got Q4_1 with 24 rows$"):
        products(raw[:24], 3, 24, 64, x, 1, np.empty(24 * 40, np.uint8))
    with pytest.raises(ValueError, match=r"^pack_rows: Q4_K with 32 rows is not packed"):
        K.pack_rows(random_weights(12, 32, 256, np.random.default_rng(0)), 12, 32, 256, np.empty(1, np.uint8))
    with pytest.raises(ValueError, match=r"^pack_rows: w has 640 bytes, fewer than 32 rows"):
        K.pack_rows(raw[:16], 3, 32, 64, np.empty(1280, np.uint8))
    with pytest.raises(ValueError, match=r"^pack_rows: out has 1279 bytes, not the 1280 of 32 rows packed"):
        K.pack_rows(raw, 3, 32, 64, np.empty(1279, np.uint8))


def test_released_file_pages_read_back_the_same_bytes(smollm_path):
    with GGUFFile(smollm_path) as f:
        name = "blk.0.ffn_down.weight"
        before = f.raw(name).copy()
        f.release(name, 1000, 300000)
        f.release(name)
        assert np.array_equal(f.raw(name), before)


def step_logits(model: Model) -> list[np.ndarray]:
    """A prompt, two decode steps, then a batched step of three sequences."""
    caches = [model.new_cache(64) for _ in range(3)]
    out = [model.eval([1, 510, 2830, 314, 253], caches[0], all_logits=True)]
    out += [model.eval([t], caches[0]) for t in (2071, 30)]
    for i, c in enumerate(caches[1:]):
        model.eval([1, 700 + i], c)
    out.append(forward_batch(model.backend, model.cfg, model.weights, caches, [43, 44, 45]))
    return out


@pytest.mark.parametrize("model_path", ["smollm_path", "gemma_path"])
def test_a_model_with_packed_weights_gives_the_logits_of_the_blocks_as_read(model_path, request, monkeypatch):
    # SmolLM2: Q4_1 layers, fused Q|K|V copies, a tied Q8_0 output; Gemma 3:
    # Q5_0 Q and K rows permuted for neox RoPE (copies), beside unpacked Q4_K and Q6_K
    path = request.getfixturevalue(model_path)
    packed = Model.load(path, backend="cpu", threads=2)
    monkeypatch.setenv(PACKED_ENV, "0")
    plain = Model.load(path, backend="cpu", threads=2)
    assert isinstance(packed.backend, CpuBackend) and not plain.backend.packed
    assert all(p.packed is None for p in plain.weights.layers[0].attn_qkv.parts)
    if K.packed_size(3, 576, 1536) == 0:
        pytest.skip(f"the {K.isa()} kernel path has no packed kernels (avx512 with VNNI has)")
    assert any(p.packed is not None for p in packed.weights.layers[0].attn_qkv.parts)
    for got, want in zip(step_logits(packed), step_logits(plain)):
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_an_embedding_only_looked_up_by_row_is_not_packed(smollm_path):
    if K.packed_size(8, 49152, 576) == 0:
        pytest.skip(f"the {K.isa()} kernel path has no packed kernels (avx512 with VNNI has)")
    backend = CpuBackend(threads=1, packed=True)
    parts = [("token_embd.weight", (49152, 576), None)]
    with GGUFFile(smollm_path) as f:
        lookup = backend.load_matrix(f, parts, embedding_only=True)
        product = backend.load_matrix(f, parts)
        assert lookup.parts[0].packed is None and product.parts[0].packed is not None
        ids = np.array([0, 17, 49151])
        assert np.array_equal(backend.embed(lookup, ids), backend.embed(product, ids))


def test_the_memory_estimate_counts_what_packing_adds(gemma_path, monkeypatch):
    with GGUFFile(gemma_path) as f:
        packed = estimate_memory(f, config_from_metadata(f.metadata), 512, backend="cpu").weights
        monkeypatch.setenv(PACKED_ENV, "0")
        plain = estimate_memory(f, config_from_metadata(f.metadata), 512, backend="cpu").weights
        # Q4_0, Q5_0 and Q8_0 blocks grow by 2 bytes each (Gemma 3: Q5_0 and Q8_0, its embedding tied)
        grown = sum(t.shape[0] * t.shape[1] // 32 * 2 for t in f.tensors.values()
                    if t.ggml_type in (2, 6, 8) and len(t.shape) == 2)
    assert packed - plain == (grown if K.packed_size(8, 32, 32) else 0) and grown > 0
