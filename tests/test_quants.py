"""Dequantizers against gguf.quants (the reference Python implementation).

Every registered type is checked on random blocks and on the tiny llama.cpp
models; results must be bit-identical, since each product of an f16 scale
and a small integer is exact in float32 and the only rounding (the min/offset
addition) happens in the same order as in ggml.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf import quants as gq

from chord_core import quants
from chord_core.errors import ModelFormatError, UnsupportedModelError
from chord_core.gguf_file import GGUFFile
from chord_core.quants import REGISTRY, dequantize, tensor_nbytes, type_name

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
TINY_LLAMAS = sorted(TINY.glob("tiny-llama-*.gguf"))

# Byte offsets of the f16 scale fields inside one block; random bytes there
# could be NaN or inf, which no real file holds.
F16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
}
FLOAT_DTYPES = {"F32": np.float32, "F16": np.float16}


def _random_blocks(name: str, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    qt = next(q for q in REGISTRY.values() if q.name == name)
    if name in FLOAT_DTYPES:
        vals = rng.standard_normal(n_blocks).astype(FLOAT_DTYPES[name])
        return vals.view(np.uint8).reshape(n_blocks, qt.block_bytes)
    if name == "BF16":
        vals = rng.standard_normal(n_blocks).astype(np.float32).view(np.uint32) >> 16
        return vals.astype(np.uint16).view(np.uint8).reshape(n_blocks, 2)
    b = rng.integers(0, 256, (n_blocks, qt.block_bytes), dtype=np.uint8)
    for col in F16_FIELDS[name]:
        scales = rng.standard_normal(n_blocks) * 0.05
        scales[:3] = [0.0, 65504.0, 6e-8]  # zero, largest and a subnormal f16
        b[:, col:col + 2] = scales.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return b


def _reference(raw: np.ndarray, type_id: int, shape: tuple[int, ...]) -> np.ndarray:
    q = REGISTRY[type_id]
    rows = raw.reshape(-1, shape[-1] // q.block_elems * q.block_bytes)
    return gq.dequantize(rows, GGMLQuantizationType(type_id)).reshape(shape)


def test_every_quant_type_is_registered():
    names = {q.name for q in REGISTRY.values()}
    assert {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
            "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"} <= names


@pytest.mark.parametrize("type_id", sorted(REGISTRY), ids=lambda t: type_name(t))
def test_random_blocks_match_gguf(type_id, monkeypatch):
    q = REGISTRY[type_id]
    # a small chunk, so that several chunks and a ragged last one are exercised
    monkeypatch.setattr(quants, "_CHUNK_ELEMS", 1000)
    rng = np.random.default_rng(type_id)
    n_blocks = 97 if q.block_elems == 256 else 613
    raw = _random_blocks(q.name, n_blocks, rng)
    shape = (n_blocks * q.block_elems // 256, 256) if q.block_elems == 256 else (n_blocks * q.block_elems,)
    got = dequantize(raw.reshape(-1), type_id, shape, name="t")
    want = _reference(raw.reshape(-1), type_id, shape)
    assert got.dtype == np.float32 and got.shape == shape
    assert np.isfinite(got).all()
    np.testing.assert_array_equal(got, want)
    # the block function called directly, without chunking, agrees too
    np.testing.assert_array_equal(q.dequantize_blocks(raw).reshape(shape), want)


@pytest.mark.parametrize("path", TINY_LLAMAS, ids=lambda p: p.stem)
def test_tiny_model_tensors_match_gguf(path):
    # e.g. "tiny-llama-Q4_K_M" must hold Q4_K tensors, or the test proves little
    quant = path.stem.removeprefix("tiny-llama-").removesuffix("_M")
    seen = set()
    with GGUFFile(path) as f:
        for t in f.tensors.values():
            raw = f.raw(t.name)
            got = dequantize(raw, t.ggml_type, t.shape, name=t.name)
            np.testing.assert_array_equal(got, _reference(raw, t.ggml_type, t.shape), err_msg=t.name)
            seen.add(type_name(t.ggml_type))
    assert quant in seen or quant == "untied-F32", (quant, seen)


def test_tiny_models_cover_every_quantized_type():
    seen = set()
    for path in TINY_LLAMAS:
        with GGUFFile(path) as f:
            seen |= {type_name(t.ggml_type) for t in f.tensors.values()}
    assert {q.name for q in REGISTRY.values()} <= seen


def test_out_buffer_is_filled_in_place():
    rng = np.random.default_rng(1)
    raw = _random_blocks("Q4_K", 6, rng).reshape(-1)
    buf = np.full(6 * 256 + 8, np.nan, np.float32)
    view = buf[4:-4]
    got = dequantize(raw, 12, (6, 256), out=view)
    assert got.shape == (6, 256) and np.shares_memory(got, buf)
    np.testing.assert_array_equal(view.reshape(6, 256), _reference(raw, 12, (6, 256)))
    assert np.isnan(buf[:4]).all() and np.isnan(buf[-4:]).all()


def test_bad_out_buffer_is_refused():
    raw = np.zeros(34, np.uint8)
    with pytest.raises(ValueError):
        dequantize(raw, 8, (32,), out=np.empty(32, np.float64))
    with pytest.raises(ValueError):
        dequantize(raw, 8, (32,), out=np.empty(31, np.float32))


def test_unsupported_type_names_tensor_and_type():
    with pytest.raises(UnsupportedModelError) as err:
        dequantize(np.zeros(66, np.uint8), 16, (256,), name="blk.3.ffn_up.weight")
    msg = str(err.value)
    assert "blk.3.ffn_up.weight" in msg and "IQ2_XXS" in msg
    assert "\n" not in msg


def test_row_length_not_a_multiple_of_the_block_is_a_format_error():
    with pytest.raises(ModelFormatError) as err:
        tensor_nbytes(2, (4, 48), name="blk.0.attn_q.weight", path="m.gguf")
    msg = str(err.value)
    assert "blk.0.attn_q.weight" in msg and "48" in msg and "Q4_0" in msg
    assert tensor_nbytes(2, (4, 64)) == 4 * 2 * 18


def test_wrong_byte_count_is_a_format_error():
    with pytest.raises(ModelFormatError, match="token_embd"):
        dequantize(np.zeros(33, np.uint8), 8, (32,), name="token_embd.weight")
