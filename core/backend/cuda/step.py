"""The forward step on the GPU: every layer the GPU holds, and the output
when it holds them all, as a sequence of fused kernels on one stream.

A decode step (one token, no trace) is captured once per cache as a CUDA
graph, the host copies in and out included, and replayed for every token:
one launch instead of ~10 per layer, so the host's part of a token is the
embedding lookup, one graph launch and one synchronization. Kernels read
the position from device memory, so the graph stays valid as it moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import cupy as cp
import numpy as np

from ...config import ModelConfig
from ...weights import ModelWeights
from ..base import ROW_EXACT_MAX_T
from . import sources
from .device import compile_all, copy_in, copy_out, f32, i32, launch, pinned, ptr
from .kv_cache import CudaKVCache
from .matrices import DeviceMatrix, Scratch, linear

LOGIT_ROWS = 128  # logits of a long all-logits chunk come back this many rows at a time
SM_TARGET = 528  # attention blocks a decode step aims at (4 per multiprocessor of an H100)
MAX_NORM_COLS = 12288  # residual_norm keeps a row in 48 KB of shared memory
# residual_norm's block: its row is latency-bound (one block per row), so as
# many threads as a block takes: 4 elements each at n = 4096 (256 threads
# took 6.9 us a call on an H100, 14 % of a 7B decode step)
NORM_THREADS = 1024


def decode_splits(n_head: int) -> int:
    """Key splits of a decode step's attention: enough blocks to fill the GPU."""
    return max(1, min(32, -(-SM_TARGET // n_head)))


def inv_freqs(n_rot: int, base: float, freq_scale: float, freq_factors: np.ndarray | None) -> np.ndarray:
    """theta_i / p, float64, as rope.rope_rotations computes it."""
    inv = base ** (-np.arange(0, n_rot, 2, dtype=np.float64) / n_rot)
    if freq_factors is not None:
        inv = inv / freq_factors.astype(np.float64)
    return inv * freq_scale


@dataclass
class DeviceLayer:
    attn_norm: cp.ndarray
    ffn_norm: cp.ndarray
    post_attn: cp.ndarray | None
    post_ffw: cp.ndarray | None
    qkv_bias: cp.ndarray | None
    q_norm: cp.ndarray | None
    k_norm: cp.ndarray | None
    qkv: DeviceMatrix
    out: DeviceMatrix
    gate_up: DeviceMatrix
    down: DeviceMatrix
    window: int
    inv_freq: cp.ndarray


def _up(a: np.ndarray | None):
    return None if a is None else cp.asarray(np.ascontiguousarray(a, dtype=np.float32))


def attend(q, kc, vc, cap: int, pos, T: int, nh: int, nkv: int, d: int, window: int, softcap: float, splits: int,
           part_o, part_ml, out) -> None:
    """out (T, nh*d) = attention of q (T, nh*d, scaled) at positions pos[0]..
    over the F16 cache kc, vc (nkv, cap, d): keys in ``splits`` splits, merged."""
    launch("layer_ops", sources.attend_name(d), (nh, T, splits), (128,),
           [ptr(q), ptr(kc), ptr(vc), i32(cap), ptr(pos), i32(nh), i32(nkv), i32(window), f32(softcap), i32(splits),
            ptr(part_o), ptr(part_ml)])
    launch("layer_ops", "attend_combine", (nh, T), (min(d, 256),),
           [ptr(part_o), ptr(part_ml), i32(nh), i32(d), i32(splits), ptr(out)])


class DeviceModel:
    """The device side of one loaded model: its vectors, buffers and stream."""

    def __init__(self, cfg: ModelConfig, w: ModelWeights, n_gpu: int, t_max: int):
        self.cfg, self.n_gpu, self.t_max = cfg, n_gpu, t_max
        self._q_scale = w.q_scale
        self.all_gpu = n_gpu == cfg.n_layer
        self.stream = cp.cuda.Stream(non_blocking=True)
        E, F, V = cfg.n_embd, cfg.n_ff, cfg.n_vocab
        nh, nkv, dk, dv = cfg.n_head, cfg.n_head_kv, cfg.head_dim_k, cfg.head_dim_v
        self.qkv_cols = nh * dk + nkv * (dk + dv)
        with self.stream:
            g = cp.asarray(inv_freqs(cfg.n_rot, cfg.rope_base, cfg.rope_freq_scale, w.rope_freqs))
            s = cp.asarray(inv_freqs(cfg.n_rot, cfg.rope_base_swa, cfg.rope_freq_scale_swa, w.rope_freqs)) \
                if any(cfg.swa_layers) else g
            self.layers = [DeviceLayer(
                attn_norm=_up(lw.attn_norm), ffn_norm=_up(lw.ffn_norm), post_attn=_up(lw.post_attention_norm),
                post_ffw=_up(lw.post_ffw_norm), qkv_bias=_up(lw.attn_qkv_bias), q_norm=_up(lw.attn_q_norm),
                k_norm=_up(lw.attn_k_norm), qkv=lw.attn_qkv, out=lw.attn_output, gate_up=lw.ffn_gate_up,
                down=lw.ffn_down, window=cfg.sliding_window if cfg.swa_layers[il] else 0,
                inv_freq=s if cfg.swa_layers[il] else g) for il, lw in enumerate(w.layers[:n_gpu])]
            self.output_norm = _up(w.output_norm)
            self.output = w.output if self.all_gpu else None
            self.ones = cp.ones(E, cp.float32)
            self.x = cp.empty((t_max, E), cp.float32)
            self.h = cp.empty((t_max, E), cp.float32)
            self.qkv = cp.empty((t_max, self.qkv_cols), cp.float32)
            self.q = cp.empty((t_max, nh * dk), cp.float32)
            self.att = cp.empty((t_max, nh * dv), cp.float32)
            self.proj = cp.empty((t_max, E), cp.float32)
            self.gu = cp.empty((t_max, 2 * F), cp.float32)
            self.act = cp.empty((t_max, F), cp.float32)
            self.splits = decode_splits(nh)
            slots = max(ROW_EXACT_MAX_T * nh * self.splits, t_max * nh)
            self.part_o = cp.empty(slots * dv, cp.float32)
            self.part_ml = cp.empty(slots * 2, cp.float32)
            self.pos = cp.zeros(1, cp.int32)
            mats = [m for L in self.layers for m in (L.qkv, L.out, L.gate_up, L.down)]
            mats += [self.output] if self.all_gpu else []
            self.scratch = Scratch(*self.scratch_shape(mats, t_max))
            self.logits = cp.empty((LOGIT_ROWS, V), cp.float32) if self.all_gpu else None
        compile_all()  # before any capture: loading a module is no stream operation
        self.pos_host = pinned((1,), np.int32)
        self.x_host = pinned((t_max, E), np.float32)
        self.out_host = pinned((LOGIT_ROWS, V) if self.all_gpu else (t_max, E), np.float32)

    @staticmethod
    def scratch_shape(mats: list[DeviceMatrix], t_max: int) -> tuple[int, int, int]:
        return (max(p.rows * p.cols for m in mats for p in m.parts), t_max, max(m.cols for m in mats))

    # -- kernels --------------------------------------------------------------
    def _linear(self, w: DeviceMatrix, x, T: int, y) -> None:
        linear(w, x, 0, x.shape[1], T, y, 0, y.shape[1], self.scratch)

    def _residual_norm(self, a, post_w, w, T: int, add: bool) -> None:
        E = self.cfg.n_embd
        launch("layer_ops", "residual_norm", (T,), (NORM_THREADS,),
               [ptr(self.x), ptr(a), i32(a.shape[1]), ptr(post_w), ptr(w), ptr(self.h), i32(E),
                f32(self.cfg.rms_eps), i32(int(add))], shared_mem=4 * E)

    def _attention(self, L: DeviceLayer, cache: CudaKVCache, il: int, T: int) -> None:
        cfg = self.cfg
        nh, nkv, dk, dv = cfg.n_head, cfg.n_head_kv, cfg.head_dim_k, cfg.head_dim_v
        kc, vc = cache.k[il], cache.v[il]
        launch("layer_ops", "qkv_post", (T, nh + 2 * nkv), (128,),
               [ptr(self.qkv), i32(self.qkv_cols), ptr(L.qkv_bias), ptr(L.q_norm), ptr(L.k_norm), ptr(L.inv_freq),
                i32(cfg.n_rot), ptr(self.pos), f32(self._q_scale), f32(cfg.rms_eps), i32(nh), i32(nkv), i32(dk),
                i32(dv), ptr(self.q), ptr(kc), ptr(vc), i32(cache.n_ctx)])
        attend(self.q, kc, vc, cache.n_ctx, self.pos, T, nh, nkv, dk, L.window, cfg.attn_softcap or 0.0,
               self.splits if T <= ROW_EXACT_MAX_T else 1, self.part_o, self.part_ml, self.att)

    def _layer(self, il: int, cache: CudaKVCache, T: int) -> None:
        L, F = self.layers[il], self.cfg.n_ff
        if il == 0:
            self._residual_norm(self.x, None, L.attn_norm, T, add=False)
        self._linear(L.qkv, self.h, T, self.qkv)
        self._attention(L, cache, il, T)
        self._linear(L.out, self.att, T, self.proj)
        self._residual_norm(self.proj, L.post_attn, L.ffn_norm, T, add=True)
        self._linear(L.gate_up, self.h, T, self.gu)
        n = T * F
        launch("layer_ops", "act_mul", ((n + 255) // 256,), (256,),
               [ptr(self.gu), i32(F), i32(T), i32(int(self.cfg.spec.gemma)), ptr(self.act)])
        self._linear(L.down, self.act, T, self.proj)
        # the residual, fused with the next norm: the next layer's, else the output's
        nxt = self.layers[il + 1].attn_norm if il + 1 < self.n_gpu else self.output_norm if self.all_gpu else self.ones
        self._residual_norm(self.proj, L.post_ffw, nxt, T, add=True)

    def _output(self, row0: int, rows: int) -> None:
        """logits[:rows] = output . h[row0:row0+rows] (h holds the output norm)."""
        linear(self.output, self.h, row0 * self.cfg.n_embd, self.cfg.n_embd, rows, self.logits, 0,
               self.cfg.n_vocab, self.scratch)

    # -- steps ----------------------------------------------------------------
    def run(self, cache: CudaKVCache, x: np.ndarray, start: int, all_logits: bool, trace=None) -> np.ndarray:
        """x (T, n_embd) at positions start.. through the GPU's layers. Returns
        logits ((T or 1), n_vocab) when the GPU holds every layer, else the
        residual stream (T, n_embd) for the CPU's layers."""
        T, E = x.shape
        with self.stream:
            self.pos_host[0] = start
            self.x_host[:T] = x
            copy_in(self.pos, self.pos_host, self.stream)
            copy_in(self.x, self.x_host, self.stream, nbytes=T * E * 4)
            for il in range(self.n_gpu):
                self._layer(il, cache, T)
                if trace is not None:
                    trace(il, cp.asnumpy(self.x[:T], stream=self.stream))
            if not self.all_gpu:
                copy_out(self.out_host, self.x, self.stream, nbytes=T * E * 4)
                self.stream.synchronize()
                return self.out_host[:T].copy()
            rows = range(T) if all_logits else range(T - 1, T)
            out = np.empty((len(rows), self.cfg.n_vocab), np.float32)
            for r0 in range(0, len(rows), LOGIT_ROWS):
                n = min(LOGIT_ROWS, len(rows) - r0)
                self._output(rows[r0], n)
                copy_out(self.out_host, self.logits, self.stream, nbytes=n * self.cfg.n_vocab * 4)
                self.stream.synchronize()
                out[r0:r0 + n] = self.out_host[:n]
            return out

    def decode(self, cache: CudaKVCache, x: np.ndarray, start: int) -> np.ndarray:
        """One token through the captured graph: (1, n_vocab) logits or (1, n_embd)."""
        if cache.decode_graph is None or cache.decode_graph[0] is not self:
            cache.decode_graph = (self, self._capture(cache))
        self.pos_host[0] = start
        self.x_host[0] = x[0]
        cache.decode_graph[1].launch(self.stream)
        self.stream.synchronize()
        n = self.cfg.n_vocab if self.all_gpu else self.cfg.n_embd
        return self.out_host[:1, :n].copy()

    def _capture(self, cache: CudaKVCache):
        E = self.cfg.n_embd
        with self.stream:
            self.stream.begin_capture()
            try:
                copy_in(self.pos, self.pos_host, self.stream)
                copy_in(self.x, self.x_host, self.stream, nbytes=E * 4)
                for il in range(self.n_gpu):
                    self._layer(il, cache, 1)
                if self.all_gpu:
                    self._output(0, 1)
                    copy_out(self.out_host, self.logits, self.stream, nbytes=self.cfg.n_vocab * 4)
                else:
                    copy_out(self.out_host, self.x, self.stream, nbytes=E * 4)
            finally:
                graph = self.stream.end_capture()
        return graph

