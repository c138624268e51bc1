"""Activations in two 8-bit levels, as matmul_q8.cu's quantize_x writes
them: the NumPy reference of its bytes and of the values they stand for.

Per group of 32: d1 = amax / 127, q1 = rint(x / d1), d2 = d1 / 256,
q2 = rint((x - d1 * q1) / d2) clamped to +-127, every step one float32
IEEE operation, so x ~= d2 * (256 * q1 + q2) within d1 / 512 (d1 / 256
where q2 is clamped): about 16 bits, where one level gives 8 (one level
moved Gemma 3 270M's perplexity by up to 1 %: csrc/kernels/README.md).

A row of ``cols`` (a multiple of 32) is ``row_bytes(cols)`` bytes:
q1 (cols int8) | q2 (cols int8) | per group float32 d2, float32 S, where
S = sum over the group of 256 * q1 + q2 (exact: below 2^24).

NumPy only, so the layout and its error bound are checked on any machine.
"""

from __future__ import annotations

import numpy as np

GROUP = 32


def row_bytes(cols: int) -> int:
    return 2 * cols + 8 * (cols // GROUP)


def quantize_rows(x: np.ndarray) -> np.ndarray:
    """(T, cols) float32 -> (T, row_bytes(cols)) uint8, quantize_x's bytes."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    T, cols = x.shape
    g = x.reshape(T, cols // GROUP, GROUP)
    d1 = np.abs(g).max(axis=2, keepdims=True) / np.float32(127)
    d2 = d1 * np.float32(1 / 256)
    live = d1 > 0
    safe1, safe2 = np.where(live, d1, np.float32(1)), np.where(live, d2, np.float32(1))
    a = np.where(live, np.rint(g / safe1), np.float32(0)).astype(np.float32)
    r = g - d1 * a
    b = np.where(live, np.clip(np.rint(r / safe2), -127, 127), np.float32(0)).astype(np.float32)
    q1, q2 = a.astype(np.int8), b.astype(np.int8)
    s = (256 * q1.astype(np.int32) + q2).sum(axis=2).astype(np.float32)
    out = np.empty((T, row_bytes(cols)), np.uint8)
    out[:, :cols] = q1.reshape(T, cols).view(np.uint8)
    out[:, cols:2 * cols] = q2.reshape(T, cols).view(np.uint8)
    ds = np.stack([d2[:, :, 0], s], axis=2).astype(np.float32)  # (T, groups, 2)
    out[:, 2 * cols:] = ds.reshape(T, -1).view(np.uint8)
    return out


def dequantize_rows(xq: np.ndarray, cols: int) -> np.ndarray:
    """quantize_rows' bytes -> the values they stand for, float64 (T, cols)."""
    xq = np.ascontiguousarray(xq, dtype=np.uint8)
    T = xq.shape[0]
    q1 = xq[:, :cols].view(np.int8).astype(np.float64)
    q2 = xq[:, cols:2 * cols].view(np.int8).astype(np.float64)
    ds = np.ascontiguousarray(xq[:, 2 * cols:]).view(np.float32).reshape(T, cols // GROUP, 2)
    d2 = np.repeat(ds[:, :, 0].astype(np.float64), GROUP, axis=1)
    return d2 * (256 * q1 + q2)
