"""Block-wise dequantizers for GGML tensor types, behind one registry.

Each entry maps a ggml type id to (name, elements per block, bytes per
block, dequantizer). A dequantizer takes the raw bytes reshaped to
(n_blocks, bytes per block) and returns float32 of shape (n_blocks, block
elements). Checked against ``gguf.quants`` in tests/test_quants.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import ModelFormatError, UnsupportedModelError

QK_K = 256  # super-block size of the k-quants


@dataclass(frozen=True)
class QuantType:
    type_id: int
    name: str
    block_elems: int
    block_bytes: int
    dequantize_blocks: Callable[[np.ndarray], np.ndarray] | None


# ggml type ids (ggml.h). Sizes for every known id so that a file with a
# type we cannot dequantize still parses and the error names the tensor.
_SIZES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
}

REGISTRY: dict[int, QuantType] = {}


def register(type_id: int):
    def deco(fn):
        name, be, bb = _SIZES[type_id]
        REGISTRY[type_id] = QuantType(type_id, name, be, bb, fn)
        return fn
    return deco


def type_name(type_id: int) -> str:
    return _SIZES.get(type_id, (f"type {type_id}",))[0]


def tensor_nbytes(type_id: int, shape: tuple[int, ...], *, name: str = "?", path: str = "?") -> int:
    if type_id not in _SIZES:
        raise ModelFormatError(f"{path}: tensor {name!r} has unknown ggml type id {type_id}")
    _, be, bb = _SIZES[type_id]
    n = 1
    for d in shape:
        if d <= 0 or d > (1 << 40):
            raise ModelFormatError(f"{path}: tensor {name!r} has an absurd dimension {d}")
        n *= d
    if n > (1 << 40):
        raise ModelFormatError(f"{path}: tensor {name!r} has an absurd element count {n}")
    if shape[-1] % be:
        raise ModelFormatError(
            f"{path}: tensor {name!r} row length {shape[-1]} is not a multiple of "
            f"the {type_name(type_id)} block size {be}")
    return n // be * bb


def dequantize(raw: np.ndarray, type_id: int, shape: tuple[int, ...], *, name: str = "?") -> np.ndarray:
    """Raw tensor bytes -> float32 array of ``shape``."""
    q = REGISTRY.get(type_id)
    if q is None or q.dequantize_blocks is None:
        supported = ", ".join(sorted(v.name for v in REGISTRY.values()))
        raise UnsupportedModelError(
            f"tensor {name!r} has quant type {type_name(type_id)}, which chord-chat cannot run "
            f"(supported: {supported})")
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, q.block_bytes)
    return q.dequantize_blocks(blocks).reshape(shape)


@register(0)
def _f32(b: np.ndarray) -> np.ndarray:
    return b.view(np.float32).astype(np.float32, copy=True)


@register(1)
def _f16(b: np.ndarray) -> np.ndarray:
    return b.view(np.float16).astype(np.float32)


@register(30)
def _bf16(b: np.ndarray) -> np.ndarray:
    return (b.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


@register(8)
def _q8_0(b: np.ndarray) -> np.ndarray:
    d = b[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    q = b[:, 2:].view(np.int8).astype(np.float32)  # (n, 32)
    return d * q
