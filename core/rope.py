"""Rotary position embeddings, in llama.cpp's two layouts."""

from __future__ import annotations

import numpy as np


def rope_tables(positions: np.ndarray, n_rot: int, base: float, freq_scale: float = 1.0,
                freq_factors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin of shape (len(positions), n_rot/2) for theta_i = p * base^(-2i/n_rot)."""
    inv = base ** (-np.arange(0, n_rot, 2, dtype=np.float64) / n_rot)
    if freq_factors is not None:  # llama 3.1 rope_freqs: divisors per frequency
        inv = inv / freq_factors.astype(np.float64)
    theta = positions.astype(np.float64)[:, None] * (inv * freq_scale)[None, :]
    return np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, layout: str) -> np.ndarray:
    """Rotate x (T, n_heads, head_dim) in place over its first n_rot dims.

    "norm": pairs are adjacent (x0,x1),(x2,x3)...; "neox": pairs are
    (x_i, x_{i+n_rot/2}). Dims past n_rot pass through unrotated.
    """
    half = cos.shape[1]
    c = cos[:, None, :]
    s = sin[:, None, :]
    if layout == "norm":
        a = x[..., 0:2 * half:2].copy()
        b = x[..., 1:2 * half:2]
        x[..., 0:2 * half:2] = a * c - b * s
        x[..., 1:2 * half:2] = a * s + b * c
    else:
        a = x[..., :half].copy()
        b = x[..., half:2 * half]
        x[..., :half] = a * c - b * s
        x[..., half:2 * half] = a * s + b * c
    return x
