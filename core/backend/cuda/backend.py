"""The cuda backend: weights in their GGUF blocks on an NVIDIA GPU, the
forward step there (step.py), sampling on the host.

It is a WholeStepBackend (base.py): forward() hands it the whole step, so
activations stay on the GPU between layers; only the token's embedding
row goes up (looked up on the host, from the mmap) and the logits come
back. ``--gpu-layers N`` keeps layers N.. and the output on the CPU,
through the host backend and forward.py's own layer code.

linear/embed/attend take and return host arrays like the CPU backends'
(the per-kernel checks use them); forward() never calls them here.
"""

from __future__ import annotations

import math
from typing import Any

import cupy as cp
import numpy as np

from ...config import ModelConfig
from ...errors import UnsupportedModelError
from ...gguf_file import GGUFFile, ShardedGGUF
from ...weights import ModelWeights
from ..base import MatrixPart
from . import device, sources
from .kv_cache import CudaKVCache
from .matrices import DeviceMatrix, Scratch, linear, upload_part
from .memory import check_device_memory, estimate_device, layer_of, resolve_gpu_layers
from .step import MAX_NORM_COLS, DeviceModel, attend

T_MAX = 512  # model.PREFILL_CHUNK: the most rows one step carries


def _host_backend(threads: int):
    from .. import kernels_unavailable_reason

    if kernels_unavailable_reason() is None:
        from ..cpu_backend import CpuBackend
        return CpuBackend(threads)
    from ..numpy_backend import NumpyBackend
    return NumpyBackend(threads)


def same_type_runs(parts: list[tuple]) -> list[list[tuple]]:
    """Consecutive parts of one type grouped: uploaded as one matrix, one
    launch per step instead of one per part (Q|K|V, gate|up)."""
    runs: list[list[tuple]] = []
    for p in parts:
        if runs and runs[-1][0][1] == p[1]:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


class CudaBackend:
    name = "cuda"

    def __init__(self, threads: int, gpu_layers: int | None = None):
        self.threads = threads
        self.host = _host_backend(threads)  # embedding lookups, and the layers left to the CPU
        self.gpu_layers = gpu_layers
        self.n_gpu = None  # resolved by prepare_load
        self.device = device.device_name()
        self._tied = False
        self._model: tuple[ModelWeights, DeviceModel] | None = None

    # -- loading --------------------------------------------------------------
    def prepare_load(self, f: GGUFFile | ShardedGGUF, cfg: ModelConfig, n_ctx: int, path: str) -> None:
        """Before any weight is read: what the kernels can run, and the memory check."""
        if cfg.head_dim_k != cfg.head_dim_v or cfg.head_dim_k not in sources.HEAD_DIMS:
            raise UnsupportedModelError(
                f"{path}: head dims {cfg.head_dim_k}/{cfg.head_dim_v} are not among the cuda backend's "
                f"({', '.join(map(str, sources.HEAD_DIMS))}); use --backend cpu")
        if cfg.n_embd > MAX_NORM_COLS or cfg.n_head % cfg.n_head_kv:
            raise UnsupportedModelError(f"{path}: n_embd {cfg.n_embd} is past the cuda backend's {MAX_NORM_COLS}")
        self.n_gpu = resolve_gpu_layers(self.gpu_layers, cfg.n_layer)
        self.n_layer = cfg.n_layer
        self._tied = "output.weight" not in f.tensors
        est = estimate_device(f, cfg, n_ctx, self.n_gpu, T_MAX)
        check_device_memory(est, path, self.device, device.free_bytes())

    def load_matrix(self, f: GGUFFile | ShardedGGUF, parts: list[MatrixPart],
                    embedding_only: bool = False) -> Any:
        name = parts[0][0]
        il = layer_of(name)
        all_gpu = self.n_gpu == self.n_layer
        if il is not None:
            on_gpu = il < self.n_gpu
        else:
            on_gpu = all_gpu and (name == "output.weight" or self._tied)
        host = None
        if not on_gpu or name == "token_embd.weight":
            # on the GPU, the host keeps the embedding for row lookups only
            host = self.host.load_matrix(f, parts, embedding_only=embedding_only or on_gpu)
            if not on_gpu:
                return host
        raws = []
        for pname, (rows, cols), order in parts:
            raw = np.asarray(f.raw(pname), dtype=np.uint8).reshape(rows, -1)
            raws.append((raw[order] if order is not None else raw, f.tensors[pname].ggml_type, rows, cols))
        dparts = [upload_part(np.concatenate([r[0] for r in group]), group[0][1], sum(r[2] for r in group),
                              group[0][3]) for group in same_type_runs(raws)]
        return DeviceMatrix(tuple(dparts), sum(p.rows for p in dparts), parts[0][1][1], host)

    def matrix_rows(self, w: Any) -> int:
        return w.rows if isinstance(w, DeviceMatrix) else self.host.matrix_rows(w)

    # -- the step -------------------------------------------------------------
    def new_cache(self, cfg: ModelConfig, n_ctx: int, kv_type: str) -> CudaKVCache:
        return CudaKVCache(cfg, n_ctx, self.n_gpu if self.n_gpu is not None else cfg.n_layer, kv_type)

    def _device_model(self, cfg: ModelConfig, w: ModelWeights) -> DeviceModel:
        if self._model is None or self._model[0] is not w:
            self._model = (w, DeviceModel(cfg, w, self.n_gpu, T_MAX))
        return self._model[1]

    def forward_step(self, cfg: ModelConfig, w: ModelWeights, cache: CudaKVCache, ids, all_logits: bool,
                     trace=None) -> np.ndarray:
        from ...forward import output_logits, run_layers

        ids = np.asarray(ids, dtype=np.int64)
        T, start = len(ids), cache.n_past
        if T > T_MAX:
            raise ValueError(f"the cuda backend takes at most {T_MAX} tokens a step, got {T}")
        cache.reserve(start + T)
        x = self.embed(w.token_embd, ids)
        if cfg.spec.gemma:
            x *= np.float32(math.sqrt(cfg.n_embd))
        if self.n_gpu:
            dm = self._device_model(cfg, w)
            if T == 1 and trace is None:
                out = dm.decode(cache, x, start)
            else:
                out = dm.run(cache, x, start, all_logits, trace)
        if self.n_gpu == cfg.n_layer:
            logits = out
            if cfg.final_softcap:  # on the host: the logits are here anyway
                c = np.float32(cfg.final_softcap)
                logits = np.tanh(logits / c) * c
        else:
            x = out if self.n_gpu else x
            x = run_layers(self.host, cfg, w, cache, x, start, range(self.n_gpu, cfg.n_layer), trace)
            logits = output_logits(self.host, cfg, w, x if all_logits else x[-1:])
        cache.tokens.extend(int(i) for i in ids)
        return logits if all_logits else logits[-1]

    # -- the Backend protocol on host arrays (checks, tools) -------------------
    def embed(self, w: Any, ids: np.ndarray) -> np.ndarray:
        return self.host.embed(w.host if isinstance(w, DeviceMatrix) else w, ids)

    def linear(self, x: np.ndarray, w: Any) -> np.ndarray:
        if not isinstance(w, DeviceMatrix):
            return self.host.linear(x, w)
        T = x.shape[0]
        xd = cp.asarray(np.ascontiguousarray(x, dtype=np.float32))
        y = cp.empty((T, w.rows), cp.float32)
        scratch = Scratch(max(p.rows * p.cols for p in w.parts), T, w.cols)
        linear(w, xd, 0, w.cols, T, y, 0, w.rows, scratch)
        return cp.asnumpy(y)

    def attend(self, q, k, v, start, lo, window, softcap):
        """As base.Backend.attend; the cache is taken as F16 (the device cache's type)."""
        from ..base import ROW_EXACT_MAX_T
        from .step import decode_splits

        T, nh, d = q.shape
        nkv, cap = k.shape[0], k.shape[1]
        S = decode_splits(nh) if T <= ROW_EXACT_MAX_T else 1
        out = cp.empty((T, nh * d), cp.float32)
        attend(cp.asarray(np.ascontiguousarray(q, dtype=np.float32)), cp.asarray(k.astype(np.float16)),
               cp.asarray(v.astype(np.float16)), cap, cp.asarray(np.array([start], np.int32)), T, nh, nkv, d,
               window, float(softcap or 0.0), S, cp.empty(T * nh * S * d, cp.float32),
               cp.empty(T * nh * S * 2, cp.float32), out)
        return cp.asnumpy(out)
