"""Random GGUF quantization blocks whose dequantized values have a chosen
standard deviation: the weights of a random model, written straight in
their blocks (never through F32), so a 7B-shaped file costs seconds.

Each generator returns a (n_blocks, bytes per block) uint8 array laid out as
ggml's blocks (ggml/src/ggml-common.h). Quant bits are uniform random; the
f16 scale fields are set so that one element's standard deviation is about
``sigma``, with a +-30% jitter per block as real weights have. The 6-bit
sub-block scales and mins of Q4_K span most of their range and the mins
cancel the mean of the 4-bit values, so the weights are centred on zero.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

QK_K = 256
# the standard deviation of uniform random quant values around their centre
_STD_4BIT = np.sqrt((16 ** 2 - 1) / 12)  # 0..15
_STD_6BIT = np.sqrt((64 ** 2 - 1) / 12)  # 0..63
_STD_INT8 = np.sqrt((256 ** 2 - 1) / 12)  # -128..127
_Q4K_SCALES = (24, 64)  # sub-block scales drawn from this half-open range
_Q6K_SCALES = (16, 128)


def _uniform_bytes(rng: np.random.Generator, n_blocks: int, block_bytes: int) -> np.ndarray:
    return rng.integers(0, 256, (n_blocks, block_bytes), dtype=np.uint8)


def _jittered(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    return (mean * rng.uniform(0.7, 1.3, n)).astype(np.float16)


def _put_f16(blocks: np.ndarray, col: int, values: np.ndarray) -> None:
    blocks[:, col:col + 2] = values.astype("<f2").view(np.uint8).reshape(-1, 2)


def _range_rms(lo: int, hi: int) -> float:
    """The root mean square of integers drawn uniformly from lo..hi-1."""
    v = np.arange(lo, hi, dtype=np.float64)
    return float(np.sqrt(np.mean(v * v)))


def q4_0(rng: np.random.Generator, n_blocks: int, sigma: float) -> np.ndarray:
    # {f16 d; u8 qs[16]}: x = (q - 8) * d
    b = _uniform_bytes(rng, n_blocks, 18)
    _put_f16(b, 0, _jittered(rng, n_blocks, sigma / _STD_4BIT))
    return b


def q8_0(rng: np.random.Generator, n_blocks: int, sigma: float) -> np.ndarray:
    # {f16 d; i8 qs[32]}: x = q * d
    b = _uniform_bytes(rng, n_blocks, 34)
    _put_f16(b, 0, _jittered(rng, n_blocks, sigma / _STD_INT8))
    return b


def _pack_k4_scales(sc: np.ndarray, mn: np.ndarray) -> np.ndarray:
    """Eight 6-bit scales and mins per block into ggml's 12 bytes: bytes 0-3
    scales 0-3 and 4-7 mins 0-3 (low 6 bits), their top 2 bits holding the
    high bits of scales/mins 4-7, whose low nibbles fill bytes 8-11."""
    out = np.empty((sc.shape[0], 12), np.uint8)
    out[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = mn[:, 0:4] | ((mn[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 0x0F) | ((mn[:, 4:8] & 0x0F) << 4)
    return out


def q4_k(rng: np.random.Generator, n_blocks: int, sigma: float) -> np.ndarray:
    # {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: x = d*sc*q - dmin*m per 32 values.
    # dmin = 8*d and m = sc*15/16 make dmin*m = d*sc*7.5: the mean of q cancels.
    b = _uniform_bytes(rng, n_blocks, 144)
    d = _jittered(rng, n_blocks, sigma / (_STD_4BIT * _range_rms(*_Q4K_SCALES)))
    _put_f16(b, 0, d)
    _put_f16(b, 2, d.astype(np.float32) * 8)
    sc = rng.integers(*_Q4K_SCALES, (n_blocks, 8), dtype=np.uint8)
    mn = np.round(sc.astype(np.float32) * 15 / 16).astype(np.uint8)
    b[:, 4:16] = _pack_k4_scales(sc, mn)
    return b


def q6_k(rng: np.random.Generator, n_blocks: int, sigma: float) -> np.ndarray:
    # {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: x = d * sc * (q - 32)
    b = _uniform_bytes(rng, n_blocks, 210)
    b[:, 192:208] = rng.integers(*_Q6K_SCALES, (n_blocks, 16), dtype=np.uint8)
    _put_f16(b, 208, _jittered(rng, n_blocks, sigma / (_STD_6BIT * _range_rms(*_Q6K_SCALES))))
    return b


# ggml type name -> (type id, elements per block, generator)
GENERATORS: dict[str, tuple[int, int, Callable[[np.random.Generator, int, float], np.ndarray]]] = {
    "Q4_0": (2, 32, q4_0),
    "Q8_0": (8, 32, q8_0),
    "Q4_K": (12, QK_K, q4_k),
    "Q6_K": (14, QK_K, q6_k),
}


def random_tensor_bytes(rng: np.random.Generator, type_name: str, n_elems: int, sigma: float) -> np.ndarray:
    """``n_elems`` random weights of type ``type_name`` as raw uint8 bytes."""
    _, block, gen = GENERATORS[type_name]
    return gen(rng, n_elems // block, sigma).reshape(-1)
