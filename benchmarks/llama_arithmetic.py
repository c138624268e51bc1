"""llama.cpp's CPU arithmetic, emulated on chord_core's forward pass: a
diagnostic for benchmarks/llama_cpp_trace.py, never used by the app.

chord_core keeps activations in F32. llama.cpp (x86, AVX2, its defaults)
rounds them on the way into every product:

- quantized weights: each input row is quantized to the weight type's
  ``vec_dot_type`` first: Q8_K (256-blocks, F32 scale -max/127, for the
  K-quants), Q8_0 (32-blocks, F16 scale, for Q4_0/Q5_0/Q8_0), or Q8_1
  (Q8_0 plus an F16 block sum ``s`` that meets the weight's min, for
  Q4_1/Q5_1: that term is d*sum(q) rounded to F16, so it is corrected here);
- attention: the KV cache is F16, Q is rounded to F16 for QK^T, the softmax
  row is rounded to F16 for the product with V;
- GELU goes through ggml's F16 table (input and output rounded to F16);
- RMS norm sums the F32 squares in double.

Products are taken in float64 and rounded once, so each op agrees with
llama.cpp's own intermediate tensors to about one F32 ulp; the residual
differences are its summation orders and its SIMD exp (SiLU, softmax).
``with llama_arithmetic(model):`` patches chord_core.forward for the block.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

import chord_core.forward as F
from chord_core.quants import type_name

VEC_DOT_TYPE = {"Q2_K": "Q8_K", "Q3_K": "Q8_K", "Q4_K": "Q8_K", "Q5_K": "Q8_K", "Q6_K": "Q8_K",
                "Q4_0": "Q8_0", "Q5_0": "Q8_0", "Q8_0": "Q8_0", "Q4_1": "Q8_1", "Q5_1": "Q8_1",
                "F16": "F16", "BF16": "F32", "F32": "F32"}
_MIN_BLOCK_BYTES = {"Q4_1": 20, "Q5_1": 24}  # block: F16 d, F16 m, then the quants
_GELU_C = math.sqrt(2.0 / math.pi)


def f16(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16).astype(np.float32)


def quantize_q8_K(x: np.ndarray) -> np.ndarray:
    """Rows (T, n) through Q8_K and back: scale from the signed extreme."""
    T, n = x.shape
    b = x.reshape(T, n // 256, 256)
    extreme = np.take_along_axis(b, np.abs(b).argmax(-1)[..., None], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iscale = np.where(extreme != 0, np.float32(-127.0) / extreme, 0).astype(np.float32)
        d = np.where(extreme != 0, np.float32(1.0) / iscale, 0).astype(np.float32)
    q = np.minimum(127, np.rint((iscale * b).astype(np.float32)))  # rint: ties to even, like ggml
    return (q * d).reshape(T, n).astype(np.float32)


def _q8_0_blocks(x: np.ndarray):
    T, n = x.shape
    b = x.reshape(T, n // 32, 32)
    amax = np.abs(b).max(-1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(amax != 0, np.float32(127) / amax, 0).astype(np.float32)
    q = np.rint((b * inv).astype(np.float32))
    return q, d, f16(d)


def quantize_q8_0(x: np.ndarray) -> np.ndarray:
    q, _, d16 = _q8_0_blocks(x)
    return (q * d16).reshape(x.shape).astype(np.float32)


def _block_mins(gguf, name: str, n_in: int) -> np.ndarray:
    t = gguf.tensors[name]
    raw = np.frombuffer(gguf.raw(name), dtype=np.uint8).reshape(-1, _MIN_BLOCK_BYTES[type_name(t.ggml_type)])
    return raw[:, 2:4].copy().view(np.float16).astype(np.float32).reshape(-1, n_in // 32)


class _Projections:
    """Replaces forward._proj: knows each weight matrix's vec_dot_type."""

    def __init__(self, model):
        g, cfg, w = model.gguf, model.cfg, model.weights
        ty = {n: type_name(t.ggml_type) for n, t in g.tensors.items()}
        self.kind: dict[int, str] = {}
        self.mins: dict[int, np.ndarray] = {}

        def register(mat, names, n_in, row_scales=None):
            kinds = {VEC_DOT_TYPE[ty[n]] for n in names}
            assert len(kinds) == 1, f"fused weights with mixed input types: {names}"
            self.kind[id(mat)] = kinds.pop()
            if self.kind[id(mat)] == "Q8_1":
                scales = row_scales or [1.0] * len(names)
                self.mins[id(mat)] = np.concatenate(
                    [_block_mins(g, n, n_in) * np.float32(s) for n, s in zip(names, scales)])

        for il, lw in enumerate(w.layers):
            p = f"blk.{il}."
            # the Q rows carry the folded attention scale (weights.py), so their mins do too
            q_scale = 1.0 if lw.attn_q_norm is not None else cfg.attn_scale
            register(lw.attn_qkv, [p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"], cfg.n_embd,
                     [q_scale, 1.0, 1.0])
            register(lw.attn_output, [p + "attn_output.weight"], cfg.n_head * cfg.head_dim_v)
            register(lw.ffn_gate_up, [p + "ffn_gate.weight", p + "ffn_up.weight"], cfg.n_embd)
            register(lw.ffn_down, [p + "ffn_down.weight"], cfg.n_ff)
        register(w.output, ["output.weight" if "output.weight" in ty else "token_embd.weight"], cfg.n_embd)

    def __call__(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        kind = self.kind.get(id(w), "F32")
        corr = None
        if kind == "Q8_K":
            x = quantize_q8_K(x)
        elif kind == "Q8_0":
            x = quantize_q8_0(x)
        elif kind == "Q8_1":
            q, d, d16 = _q8_0_blocks(x)
            qsum = q.sum(-1)
            s16 = f16((d[..., 0] * qsum).astype(np.float32))
            corr = (s16 - d16[..., 0] * qsum).astype(np.float64) @ self.mins[id(w)].T.astype(np.float64)
            x = (q * d16).reshape(x.shape).astype(np.float32)
        elif kind == "F16":
            x = f16(x)
        y = x.astype(np.float64) @ w.T.astype(np.float64)
        if corr is not None:
            y += corr
        return y.astype(np.float32)


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    s = (x * x).astype(np.float32).astype(np.float64).sum(-1, keepdims=True)
    mean = (s / x.shape[-1]).astype(np.float32)
    scale = (np.float32(1) / np.sqrt((mean + np.float32(eps)).astype(np.float32))).astype(np.float32)
    return ((x * scale).astype(np.float32) * w).astype(np.float32)


def gelu_f16_table(x: np.ndarray) -> np.ndarray:
    xr = f16(x).astype(np.float64)
    y = f16((0.5 * xr * (1 + np.tanh(_GELU_C * xr * (1 + 0.044715 * xr * xr)))).astype(np.float32))
    return np.where(x <= -10, 0, np.where(x >= 10, x, y)).astype(np.float32)


def attention(cfg, lw, il, h, cache, start, rope, masks):
    T = h.shape[0]
    nh, nkv, dk, dv = cfg.n_head, cfg.n_head_kv, cfg.head_dim_k, cfg.head_dim_v
    qkv = F._proj(h, lw.attn_qkv)
    if lw.attn_qkv_bias is not None:
        qkv += lw.attn_qkv_bias
    q = qkv[:, :nh * dk].reshape(T, nh, dk).copy()
    k = qkv[:, nh * dk:(nh + nkv) * dk].reshape(T, nkv, dk).copy()
    v = qkv[:, (nh + nkv) * dk:].reshape(T, nkv, dv)
    if lw.attn_q_norm is not None:
        q = F.rms_norm(q, lw.attn_q_norm, cfg.rms_eps)
        k = F.rms_norm(k, lw.attn_k_norm, cfg.rms_eps)
    F.apply_rope(q, rope)
    F.apply_rope(k, rope)
    q, k, v = f16(q), f16(k), f16(v)  # F16 KV cache; Q meets F16 K as F16
    end = start + T
    cache.k[il][:, start:end] = k.transpose(1, 0, 2)
    cache.v[il][:, start:end] = v.transpose(1, 0, 2)
    window = cfg.sliding_window if cfg.swa_layers[il] else 0
    lo = max(0, start - window + 1) if window else 0
    K = cache.k[il][:, lo:end].astype(np.float64)
    V = cache.v[il][:, lo:end].astype(np.float64)
    g = nh // nkv
    qg = q.reshape(T, nkv, g, dk).transpose(1, 2, 0, 3).reshape(nkv, g * T, dk).astype(np.float64)
    s = np.matmul(qg, K.transpose(0, 2, 1)).astype(np.float32).reshape(nkv, g, T, end - lo)
    if cfg.attn_softcap:
        c = np.float32(cfg.attn_softcap)
        s = np.tanh(s / c) * c
    mask = F._additive_mask(start, T, lo, window)
    if mask is not None:
        s = s + mask
    e = np.exp(s - s.max(-1, keepdims=True))
    p = f16(e * (1.0 / e.astype(np.float64).sum(-1, keepdims=True)).astype(np.float32))
    out = np.matmul(p.reshape(nkv, g * T, end - lo).astype(np.float64), V).astype(np.float32)
    out = out.reshape(nkv, g, T, dv).transpose(2, 0, 1, 3).reshape(T, nh * dv)
    return F._proj(out, lw.attn_output)


@contextlib.contextmanager
def llama_arithmetic(model):
    saved = (F._proj, F._attention, F._gelu_tanh, F.rms_norm)
    F._proj, F._attention, F._gelu_tanh, F.rms_norm = _Projections(model), attention, gelu_f16_table, rms_norm
    try:
        yield
    finally:
        F._proj, F._attention, F._gelu_tanh, F.rms_norm = saved
