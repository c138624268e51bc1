"""llama.cpp's CPU arithmetic, emulated on chord_core's forward pass: a
diagnostic for benchmarks/llama_cpp_trace.py, never used by the app.

chord_core keeps activations in F32. llama.cpp (x86, AVX2, its defaults)
rounds them on the way into every product:

- quantized weights: each input row is quantized to the weight type's
  ``vec_dot_type`` first: Q8_K (256-blocks, F32 scale -max/127, for the
  K-quants), Q8_0 (32-blocks, F16 scale, for Q4_0/Q5_0/Q8_0), or Q8_1
  (Q8_0 plus an F16 block sum ``s`` that meets the weight's min, for
  Q4_1/Q5_1: that term is d*sum(q) rounded to F16, so it is corrected here);
- attention: the KV cache is F16 (load the model with ``kv_type="f16"``),
  Q is rounded to F16 for QK^T, the softmax row is rounded to F16 for the
  product with V.

Products are taken in float64 and rounded once, so each op agrees with
llama.cpp's own intermediate tensors to about one F32 ulp; the residual
differences are its summation orders, its SIMD exp (SiLU, softmax), its
double-precision RMS-norm sum and its F16 GELU table (forward.py's
elementwise ops, which a backend does not own, so no longer emulated).
``LlamaArithmeticBackend(model)`` is a backend: pass it to ``forward``.
"""

from __future__ import annotations

import math

import numpy as np

from chord_core.backend.numpy_backend import NumpyBackend
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


class LlamaArithmeticBackend(NumpyBackend):
    """The numpy backend with llama.cpp's rounding: knows each weight
    matrix's vec_dot_type. The model must be loaded with backend="numpy"."""

    def __init__(self, model):
        super().__init__(model.threads)
        g, cfg, w = model.gguf, model.cfg, model.weights
        ty = {n: type_name(t.ggml_type) for n, t in g.tensors.items()}
        self.kind: dict[int, str] = {}
        self.mins: dict[int, np.ndarray] = {}

        def register(mat, names, n_in):
            kinds = {VEC_DOT_TYPE[ty[n]] for n in names}
            assert len(kinds) == 1, f"fused weights with mixed input types: {names}"
            self.kind[id(mat)] = kinds.pop()
            if self.kind[id(mat)] == "Q8_1":
                self.mins[id(mat)] = np.concatenate([_block_mins(g, n, n_in) for n in names])

        for il, lw in enumerate(w.layers):
            p = f"blk.{il}."
            register(lw.attn_qkv, [p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"], cfg.n_embd)
            register(lw.attn_output, [p + "attn_output.weight"], cfg.n_head * cfg.head_dim_v)
            register(lw.ffn_gate_up, [p + "ffn_gate.weight", p + "ffn_up.weight"], cfg.n_embd)
            register(lw.ffn_down, [p + "ffn_down.weight"], cfg.n_ff)
        register(w.output, ["output.weight" if "output.weight" in ty else "token_embd.weight"], cfg.n_embd)

    def linear(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
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

    def attend(self, q, k, v, start, lo, window, softcap):
        return attention(q, k, v, start, lo, window, softcap)


def attention(q, k, v, start, lo, window, softcap):
    """One layer over an F16 cache: Q meets F16 K as F16, softmax rows rounded to F16."""
    T, nh, dk = q.shape
    nkv, dv = k.shape[0], v.shape[2]
    end = start + T
    q = f16(q)
    K = k[:, lo:end].astype(np.float64)
    V = v[:, lo:end].astype(np.float64)
    g = nh // nkv
    qg = q.reshape(T, nkv, g, dk).transpose(1, 2, 0, 3).reshape(nkv, g * T, dk).astype(np.float64)
    s = np.matmul(qg, K.transpose(0, 2, 1)).astype(np.float32).reshape(nkv, g, T, end - lo)
    if softcap:
        c = np.float32(softcap)
        s = np.tanh(s / c) * c
    qpos = np.arange(start, end)[:, None]
    kpos = np.arange(lo, end)[None, :]
    masked = (kpos > qpos) | (((qpos - kpos) >= window) if window else False)
    s = np.where(masked, np.float32(-np.inf), s)
    e = np.exp(s - s.max(-1, keepdims=True))
    p = f16(e * (1.0 / e.astype(np.float64).sum(-1, keepdims=True)).astype(np.float32))
    out = np.matmul(p.reshape(nkv, g * T, end - lo).astype(np.float64), V).astype(np.float32)
    return out.reshape(nkv, g, T, dv).transpose(2, 0, 1, 3).reshape(T, nh * dv)
