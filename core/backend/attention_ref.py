"""NumPy reference of attention over one layer's KV cache (see base.Backend.attend)."""

from __future__ import annotations

import numpy as np


def attend_reference(q, k, v, out, start, lo, end, window, softcap) -> None:
    """What ``chord_core._attention.attend`` computes, less its threads.

    q (T, n_head, hd_k) float32, already scaled; k (n_head_kv, cap, hd_k) and
    v (n_head_kv, cap, hd_v), float32 or float16 (read as float32), valid at
    positions lo..end-1 with end = start + T; out (T, n_head*hd_v) float32.
    Query i at start+i sees keys lo <= p <= start+i and, if window > 0,
    (start+i) - p < window; head h reads kv head h // (n_head // n_head_kv).
    Materializes the (T x n) scores: the reference, not the fast path."""
    T, nh, dk = q.shape
    nkv, dv = k.shape[0], v.shape[2]
    K = k[:, lo:end].astype(np.float32, copy=False)  # (nkv, n, dk)
    V = v[:, lo:end].astype(np.float32, copy=False)  # (nkv, n, dv)
    g = nh // nkv
    # heads h = kv*g + j share kv head kv (GQA), so group queries per kv head
    qg = q.reshape(T, nkv, g, dk).transpose(1, 2, 0, 3).reshape(nkv, g * T, dk)
    scores = np.matmul(qg, K.transpose(0, 2, 1)).reshape(nkv, g, T, end - lo)
    if softcap:
        c = np.float32(softcap)
        scores = np.tanh(scores / c) * c
    if T > 1 or window:
        qpos = np.arange(start, start + T)[:, None]
        kpos = np.arange(lo, end)[None, :]
        masked = kpos > qpos
        if window:
            masked |= (qpos - kpos) >= window
        scores[..., masked] = -np.inf
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    o = np.matmul(scores.reshape(nkv, g * T, end - lo), V)  # (nkv, g*T, dv)
    out[:] = o.reshape(nkv, g, T, dv).transpose(2, 0, 1, 3).reshape(T, nh * dv)
