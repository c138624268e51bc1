"""The KV cache: keys and values of every evaluated position, per layer.

Capacity grows by doubling up to ``n_ctx`` so a short chat with a model
whose context is 32k does not reserve gigabytes up front. ``tokens``
records which ids the cache holds, so a session can reuse the longest
common prefix of a new prompt and truncate to it.
"""

from __future__ import annotations

import numpy as np

from .config import ModelConfig
from .errors import ChordError, ContextFullError

KV_TYPES = {"f32": np.float32, "f16": np.float16}


def kv_dtype(kv_type: str) -> type:
    """The NumPy dtype of a cache of ``kv_type``, or a one-line error."""
    if kv_type not in KV_TYPES:
        raise ChordError(f"unknown KV cache type {kv_type!r} (choose from {', '.join(KV_TYPES)})")
    return KV_TYPES[kv_type]


class KVCache:
    def __init__(self, cfg: ModelConfig, n_ctx: int, initial: int = 256, kv_type: str = "f32"):
        self.cfg = cfg
        self.n_ctx = int(n_ctx)
        self.kv_type = kv_type
        self.dtype = kv_dtype(kv_type)
        self.tokens: list[int] = []
        cap = min(self.n_ctx, initial)
        # k[il]: (n_head_kv, capacity, hd_k); v[il]: (n_head_kv, capacity, hd_v).
        # Head-major so that one head's keys are one contiguous (positions, hd)
        # matrix for the QK^T product.
        self.k = [np.zeros((cfg.n_head_kv, cap, cfg.head_dim_k), self.dtype) for _ in range(cfg.n_layer)]
        self.v = [np.zeros((cfg.n_head_kv, cap, cfg.head_dim_v), self.dtype) for _ in range(cfg.n_layer)]

    @staticmethod
    def bytes_for(cfg: ModelConfig, n_ctx: int, kv_type: str = "f32") -> int:
        """What a full cache of ``n_ctx`` positions takes (the memory check)."""
        per_position = cfg.n_layer * cfg.n_head_kv * (cfg.head_dim_k + cfg.head_dim_v)
        return int(n_ctx) * per_position * np.dtype(kv_dtype(kv_type)).itemsize

    @property
    def n_past(self) -> int:
        return len(self.tokens)

    @property
    def capacity(self) -> int:
        return self.k[0].shape[1]

    def reserve(self, n: int) -> None:
        """Make room for ``n`` positions in all, or raise ContextFullError."""
        if n > self.n_ctx:
            raise ContextFullError(f"context full: {n} tokens do not fit in the context of {self.n_ctx}")
        cap = self.capacity
        if n <= cap:
            return
        while cap < n:
            cap = min(self.n_ctx, cap * 2)
        used = self.n_past
        for arrs in (self.k, self.v):
            for il, a in enumerate(arrs):
                grown = np.zeros((a.shape[0], cap, a.shape[2]), self.dtype)
                grown[:, :used] = a[:, :used]
                arrs[il] = grown

    def truncate(self, n: int) -> None:
        """Forget every position from ``n`` on (regenerate, edit)."""
        del self.tokens[max(0, n):]

    def clear(self) -> None:
        self.tokens.clear()

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.k) + sum(a.nbytes for a in self.v)
