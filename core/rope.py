"""Rotary position embeddings.

llama.cpp has two layouts: "norm" rotates adjacent pairs (x0,x1),(x2,x3)…
and "neox" rotates split halves (x_i, x_{i+n_rot/2}). At load, the Q and K
rows of neox models are permuted into the adjacent layout
(``interleave_halves``); dot products q·k do not change when both sides are
permuted alike, so from then on every model rotates adjacent pairs, which
is one complex multiplication per position.
"""

from __future__ import annotations

import numpy as np


def rope_rotations(positions: np.ndarray, n_rot: int, base: float, freq_scale: float = 1.0,
                   freq_factors: np.ndarray | None = None) -> np.ndarray:
    """exp(i * theta) of shape (len(positions), n_rot/2), complex64, for
    theta_i = p * freq_scale * base^(-2i/n_rot) / freq_factors[i]."""
    inv = base ** (-np.arange(0, n_rot, 2, dtype=np.float64) / n_rot)
    if freq_factors is not None:  # llama 3.1 rope_freqs: divisors per frequency
        inv = inv / freq_factors.astype(np.float64)
    theta = positions.astype(np.float64)[:, None] * (inv * freq_scale)[None, :]
    return np.exp(1j * theta).astype(np.complex64)


def apply_rope(x: np.ndarray, rot: np.ndarray) -> None:
    """Rotate x (T, n_heads, head_dim) in place over its first n_rot dims
    (adjacent pairs as complex numbers); dims past n_rot pass through."""
    half = rot.shape[1]
    x[..., :2 * half].view(np.complex64)[...] *= rot[:, None, :]


def interleave_halves(head_dim: int, n_rot: int) -> np.ndarray:
    """The index order that turns a neox head [a0..a(h-1), b0..b(h-1), rest]
    into [a0, b0, a1, b1, …, rest], h = n_rot/2."""
    h = n_rot // 2
    pairs = np.stack([np.arange(h), np.arange(h) + h], axis=1).reshape(-1)
    return np.concatenate([pairs, np.arange(n_rot, head_dim)])
