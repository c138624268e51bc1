"""Block-wise dequantizers for GGML tensor types, behind one registry.

Each entry maps a ggml type id to (name, elements per block, bytes per
block, dequantizer). A dequantizer takes the raw bytes reshaped to
(n_blocks, bytes per block) and returns float32 of shape (n_blocks, block
elements), written into ``out`` when given. Results are bit-identical to
``gguf.quants`` (tests/test_quants.py): products of an f16 scale and a small
integer are exact in float32, and the one rounding step, subtracting or
adding the min, is done in the same order as ggml's.

All of it is NumPy with no loop over blocks. What costs time is not
arithmetic but NumPy's per-row overhead on short rows, hence the word-wise
column ops and materialized per-element scales below.
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
    dequantize_blocks: Callable[[np.ndarray], np.ndarray]


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

# Blocks are dequantized this many output elements at a time so that the
# uint8 temporaries and the output slice stay in L2 cache between passes;
# whole-tensor temporaries made Gemma's 167M-element embedding memory-bound.
_CHUNK_ELEMS = 1 << 16


def register(type_id: int):
    """Register ``fn(blocks, out)``, which fills ``out`` (n_blocks, block_elems)
    float32 from ``blocks`` (n_blocks, block_bytes) uint8."""
    def deco(fn):
        name, be, bb = _SIZES[type_id]

        def dequantize_blocks(blocks: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
            if out is None:
                out = np.empty((blocks.shape[0], be), np.float32)
            fn(blocks, out)
            return out

        REGISTRY[type_id] = QuantType(type_id, name, be, bb, dequantize_blocks)
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


def check_supported(type_id: int, name: str = "?") -> QuantType:
    """The type's registry entry, or a one-line error naming the tensor. Both
    backends run exactly the types registered here."""
    q = REGISTRY.get(type_id)
    if q is None:
        supported = ", ".join(sorted(v.name for v in REGISTRY.values()))
        raise UnsupportedModelError(
            f"tensor {name!r} has quant type {type_name(type_id)}, which chord-chat cannot run "
            f"(supported: {supported})")
    return q


def dequantize(raw: np.ndarray, type_id: int, shape: tuple[int, ...], *, name: str = "?",
               out: np.ndarray | None = None) -> np.ndarray:
    """Raw tensor bytes -> float32 array of ``shape``.

    With ``out`` (a C-contiguous float32 array of as many elements) the
    result is written there, so a caller can fill one preallocated buffer.
    """
    q = check_supported(type_id, name)
    n = 1
    for d in shape:
        n *= d
    expected = tensor_nbytes(type_id, tuple(shape), name=name)
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1)
    if blocks.size != expected:
        raise ModelFormatError(
            f"tensor {name!r} has {blocks.size} bytes, expected {expected} for "
            f"{type_name(type_id)} of shape {tuple(shape)}")
    blocks = blocks.reshape(-1, q.block_bytes)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.dtype != np.float32 or out.size != n or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of {n} elements")
    flat = out.reshape(-1, q.block_elems)
    step = max(1, _CHUNK_ELEMS // q.block_elems)
    fill = q.dequantize_blocks
    for i in range(0, blocks.shape[0], step):
        fill(blocks[i:i + step], flat[i:i + step])
    return out.reshape(shape)


def _f16(b: np.ndarray, col: int) -> np.ndarray:
    """The float16 at byte ``col`` of every block, as float32 (n,)."""
    # [:, 0] makes it one strided 1-D loop instead of n one-element rows
    return b[:, col:col + 2].view(np.float16)[:, 0].astype(np.float32)


def _per_elem(x: np.ndarray, k: int) -> np.ndarray:
    """(n, m) or (n,) -> (n, m*k) with each value repeated k times.

    Multiplying by a materialized (n, 32) array runs as one contiguous loop;
    broadcasting (n, 1) against (n, 32) makes NumPy loop n times over 32
    elements, which is slower than the repeat itself.
    """
    return np.repeat(x, k).reshape(x.shape[0], -1)


_LO_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F)


def _nibbles16(b: np.ndarray, col: int) -> np.ndarray:
    """The 16 bytes at ``col`` -> (n, 32) uint8: low nibbles, then high ones.

    Works on 8-byte words, one strided column at a time, so each NumPy call
    covers every block; per-byte row-wise ops cost n calls of 16 bytes.
    """
    v = b[:, col:col + 16].view(np.uint64)
    q = np.empty((b.shape[0], 4), np.uint64)
    for k in (0, 1):
        np.copyto(q[:, k], v[:, k])
        np.right_shift(v[:, k], 4, out=q[:, k + 2])
    q &= _LO_NIBBLES
    return q.view(np.uint8)


def _bit_table(one: int, zero: int) -> np.ndarray:
    """uint64 per byte value whose byte k is ``one`` if bit k is set, else ``zero``."""
    bits = (np.arange(256, dtype=np.uint16)[:, None] >> np.arange(8, dtype=np.uint16)) & 1
    table = np.where(bits == 1, one, zero).astype(np.uint8)
    return np.ascontiguousarray(table).view(np.uint64).reshape(256)


def _high_bits(b: np.ndarray, col: int, table: np.ndarray) -> np.ndarray:
    """Q5_0/Q5_1's 32 packed fifth bits at ``col`` -> (n, 32) uint8 via ``table``.

    One table lookup spreads a byte into 8, much cheaper than unpacking bits.
    """
    qh = b[:, col:col + 4].view(np.uint32)[:, 0].copy()
    return np.take(table, qh.view(np.uint8)).view(np.uint8).reshape(-1, 32)


_HI5_0 = _bit_table(0, 0xF0)  # 16*bit - 16 as a wrapping uint8: folds in Q5_0's offset
_HI5_1 = _bit_table(16, 0)


@register(0)
def _f32(b: np.ndarray, out: np.ndarray) -> None:
    np.copyto(out, b.view(np.float32))


@register(1)
def _f16_t(b: np.ndarray, out: np.ndarray) -> None:
    np.copyto(out, b.view(np.float16))


@register(30)
def _bf16(b: np.ndarray, out: np.ndarray) -> None:
    u = out.view(np.uint32)
    np.copyto(u, b.view(np.uint16))
    u <<= 16


@register(8)
def _q8_0(b: np.ndarray, out: np.ndarray) -> None:
    np.multiply(b[:, 2:].view(np.int8), _per_elem(_f16(b, 0), 32), out=out)


@register(2)
def _q4_0(b: np.ndarray, out: np.ndarray) -> None:
    q = _nibbles16(b, 2)
    q -= 8  # wraps; read as int8 it is -8..7, so the offset costs no float pass
    np.multiply(q.view(np.int8), _per_elem(_f16(b, 0), 32), out=out)


@register(3)
def _q4_1(b: np.ndarray, out: np.ndarray) -> None:
    np.multiply(_nibbles16(b, 4), _per_elem(_f16(b, 0), 32), out=out)
    out += _per_elem(_f16(b, 2), 32)


@register(6)
def _q5_0(b: np.ndarray, out: np.ndarray) -> None:
    q = _high_bits(b, 2, _HI5_0)
    q += _nibbles16(b, 6)
    np.multiply(q.view(np.int8), _per_elem(_f16(b, 0), 32), out=out)


@register(7)
def _q5_1(b: np.ndarray, out: np.ndarray) -> None:
    q = _high_bits(b, 4, _HI5_1)
    q += _nibbles16(b, 8)
    np.multiply(q, _per_elem(_f16(b, 0), 32), out=out)
    out += _per_elem(_f16(b, 2), 32)


def _bits(src: np.ndarray, out: np.ndarray, first: int, step: int, to: int, mask: int) -> None:
    """out[..., k, :] = bits first + k*step.. of ``src`` moved to bit ``to``, under ``mask``.

    One scalar shift per k: NumPy vectorizes those, while broadcasting an
    array of shift counts runs a slow generic loop.
    """
    for k in range(out.shape[-2]):
        s = first + k * step - to
        dst = out[..., k, :]
        if s > 0:
            np.right_shift(src, s, out=dst)
        elif s < 0:
            np.left_shift(src, -s, out=dst)
        else:
            np.copyto(dst, src)
    out &= mask


@register(10)
def _q2_k(b: np.ndarray, out: np.ndarray) -> None:
    n = b.shape[0]
    sc = b[:, :16]
    # byte l of each 32-byte half holds elements l, l+32, l+64, l+96 of that half
    q = np.empty((n, 2, 4, 32), np.uint8)
    _bits(b[:, 16:80].reshape(n, 2, 32), q, 0, 2, 0, 3)
    np.multiply(q.reshape(n, 256), _per_elem(_f16(b, 80)[:, None] * (sc & 0x0F), 16), out=out)
    out -= _per_elem(_f16(b, 82)[:, None] * (sc >> 4), 16)


def _q3_k_scales(b: np.ndarray) -> np.ndarray:
    """Bytes 96..107 -> (n, 16) signed scales: low nibbles of bytes 0-7, then
    their high nibbles; the top 2 bits come from bytes 8-11, 2 bits each."""
    w = b[:, 96:108].view(np.uint32)
    sc = np.empty((b.shape[0], 4), np.uint32)
    for g in range(4):
        np.right_shift(w[:, 2], 2 * g, out=sc[:, g])
    sc &= 0x03030303
    sc <<= 4
    sc[:, 0] |= w[:, 0] & 0x0F0F0F0F
    sc[:, 1] |= w[:, 1] & 0x0F0F0F0F
    sc[:, 2] |= (w[:, 0] >> 4) & 0x0F0F0F0F
    sc[:, 3] |= (w[:, 1] >> 4) & 0x0F0F0F0F
    u = sc.view(np.uint8)
    u -= 32
    return u.view(np.int8)


@register(11)
def _q3_k(b: np.ndarray, out: np.ndarray) -> None:
    n = b.shape[0]
    q = np.empty((n, 2, 4, 32), np.uint8)
    _bits(b[:, 32:96].reshape(n, 2, 32), q, 0, 2, 0, 3)
    # a *clear* hmask bit subtracts 4; bit k of hmask byte l belongs to element 32k+l
    hb = np.empty((n, 8, 32), np.uint8)
    _bits(b[:, :32], hb, 0, 1, 2, 4)
    q |= hb.reshape(n, 2, 4, 32)
    q -= 4
    dl = _f16(b, 108)[:, None] * _q3_k_scales(b)
    np.multiply(q.view(np.int8).reshape(n, 256), _per_elem(dl, 16), out=out)


def _k4_scales(b: np.ndarray) -> np.ndarray:
    """Q4_K/Q5_K's 12 scale bytes at 4..15 -> (n, 2, 8): six-bit scales, mins.

    Bytes 0-3 / 4-7 hold scales / mins 0-3 in their low 6 bits and the top 2
    bits of scales / mins 4-7; bytes 8-11 hold the low nibbles of 4-7. Done
    on 4-byte words, one column per call: per-row byte ops cost n calls each.
    """
    w = b[:, 4:16].view(np.uint32)
    lo, mid, hi = w[:, 0], w[:, 1], w[:, 2]
    out = np.empty((b.shape[0], 4), np.uint32)
    np.bitwise_and(lo, 0x3F3F3F3F, out=out[:, 0])
    np.bitwise_or(hi & 0x0F0F0F0F, (lo >> 2) & 0x30303030, out=out[:, 1])
    np.bitwise_and(mid, 0x3F3F3F3F, out=out[:, 2])
    np.bitwise_or((hi >> 4) & 0x0F0F0F0F, (mid >> 2) & 0x30303030, out=out[:, 3])
    return out.view(np.uint8).reshape(-1, 2, 8)


def _k4_nibbles(qs: np.ndarray) -> np.ndarray:
    """Each 32-byte group gives 64 elements: low nibbles, then high ones."""
    n = qs.shape[0]
    q = np.empty((n, 4, 2, 32), np.uint8)
    g = qs.reshape(n, 4, 32)
    np.bitwise_and(g, 0x0F, out=q[:, :, 0])
    np.right_shift(g, 4, out=q[:, :, 1])
    return q.reshape(n, 256)


def _k4_apply(b: np.ndarray, q: np.ndarray, out: np.ndarray) -> None:
    # d * scale and dmin * min, each exact in float32 like ggml's
    dm = b[:, 0:4].view(np.float16).astype(np.float32)[:, :, None] * _k4_scales(b)
    np.multiply(q, _per_elem(dm[:, 0], 32), out=out)
    out -= _per_elem(dm[:, 1], 32)


@register(12)
def _q4_k(b: np.ndarray, out: np.ndarray) -> None:
    _k4_apply(b, _k4_nibbles(b[:, 16:144]), out)


@register(13)
def _q5_k(b: np.ndarray, out: np.ndarray) -> None:
    n = b.shape[0]
    q = _k4_nibbles(b[:, 48:176])
    # bit k of qh byte l is the fifth bit of element 32k+l
    hb = np.empty((n, 8, 32), np.uint8)
    _bits(b[:, 16:48], hb, 0, 1, 4, 0x10)
    q |= hb.reshape(n, 256)
    _k4_apply(b, q, out)


@register(14)
def _q6_k(b: np.ndarray, out: np.ndarray) -> None:
    n = b.shape[0]
    # per 128-element half: 64 ql bytes give low nibbles of elements 0-63 and
    # high nibbles of 64-127; bits 2k..2k+1 of qh byte l are bits 4-5 of l+32k
    q = np.empty((n, 2, 4, 32), np.uint8)
    ql = b[:, :128].reshape(n, 2, 2, 32)
    np.bitwise_and(ql, 0x0F, out=q[:, :, :2])
    np.right_shift(ql, 4, out=q[:, :, 2:])
    hb = np.empty((n, 2, 4, 32), np.uint8)
    _bits(b[:, 128:192].reshape(n, 2, 32), hb, 0, 2, 4, 0x30)
    q |= hb
    q -= 32
    dl = _f16(b, 208)[:, None] * b[:, 192:208].view(np.int8)
    np.multiply(q.view(np.int8).reshape(n, 256), _per_elem(dl, 16), out=out)
