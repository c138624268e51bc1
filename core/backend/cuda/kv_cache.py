"""The KV cache of the cuda backend: F16 on the GPU for the layers there,
the host cache's arrays for the layers ``--gpu-layers`` leaves on the CPU.

The device arrays are allocated once at the full context (the memory check
counted them): a captured decode graph holds their addresses. Bookkeeping
(tokens, n_past, truncate) is the host KVCache's, so sessions, prefix reuse
and regeneration work unchanged.
"""

from __future__ import annotations

import cupy as cp
import numpy as np

from ...config import ModelConfig
from ...errors import ContextFullError
from ...kv_cache import kv_dtype


class CudaKVCache:
    def __init__(self, cfg: ModelConfig, n_ctx: int, n_gpu_layers: int, kv_type: str = "f16"):
        self.cfg = cfg
        self.n_ctx = int(n_ctx)
        self.kv_type = kv_type
        self.dtype = kv_dtype(kv_type)  # of the host layers; the device layers are F16
        self.tokens: list[int] = []
        self.n_gpu_layers = n_gpu_layers
        nkv, dk, dv = cfg.n_head_kv, cfg.head_dim_k, cfg.head_dim_v
        # k[il]: (n_head_kv, n_ctx, hd_k), the host cache's layout
        self.k = [cp.zeros((nkv, self.n_ctx, dk), cp.float16) if il < n_gpu_layers
                  else np.zeros((nkv, self.n_ctx, dk), self.dtype) for il in range(cfg.n_layer)]
        self.v = [cp.zeros((nkv, self.n_ctx, dv), cp.float16) if il < n_gpu_layers
                  else np.zeros((nkv, self.n_ctx, dv), self.dtype) for il in range(cfg.n_layer)]
        self.decode_graph = None  # set by the backend's first decode step (step.py)

    @staticmethod
    def device_bytes(cfg: ModelConfig, n_ctx: int, n_gpu_layers: int) -> int:
        return int(n_ctx) * n_gpu_layers * cfg.n_head_kv * (cfg.head_dim_k + cfg.head_dim_v) * 2

    @property
    def n_past(self) -> int:
        return len(self.tokens)

    @property
    def capacity(self) -> int:
        return self.n_ctx

    def reserve(self, n: int) -> None:
        if n > self.n_ctx:
            raise ContextFullError(f"context full: {n} tokens do not fit in the context of {self.n_ctx}")

    def truncate(self, n: int) -> None:
        del self.tokens[max(0, n):]

    def clear(self) -> None:
        self.tokens.clear()

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.k) + sum(a.nbytes for a in self.v)
