"""The transformer forward pass: one function for every supported family.

Per-architecture behaviour comes from ``cfg.spec`` flags (see arch.py).
A call evaluates T new tokens at positions cache.n_past .. n_past+T-1,
writes their keys/values into the cache, and returns logits for the rows
asked for. T = 1 is the decode step (matrix-vector products); T > 1 is a
batched prefill (one matrix product per weight for the whole chunk).
``forward_batch`` is the decode step of B sequences at once, each with its
own cache at its own position: the rows share every product (decode streams
each weight once per step, so B rows cost about what one does), while RoPE
and attention are each row's own. Both run the same layers: a forward's
rows are split into spans, one per sequence, and only attention looks at
which span a row belongs to.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .config import ModelConfig
from .kv_cache import KVCache
from .rope import apply_rope, rope_rotations
from .backend.base import Backend
from .weights import LayerWeights, ModelWeights

_GELU_C = math.sqrt(2.0 / math.pi)


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    # Gemma's HF norms compute x * (1 + w); its GGUF converter already adds
    # the 1 into the stored weight, so every family multiplies by w as is.
    # One code path for every T: a row must come out bit for bit the same in
    # a decode step as in a prefill, or the kernels' 8-bit rounding of the
    # next product turns a last-bit difference into a visible one.
    ms = np.einsum("...i,...i->...", x, x)
    ms *= np.float32(1.0 / x.shape[-1])
    ms += np.float32(eps)
    inv = np.reciprocal(np.sqrt(ms, out=ms), out=ms)[..., None]
    out = x * inv
    out *= w
    return out


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    # ggml_gelu is the tanh approximation, as Gemma's hidden_activation asks:
    # 0.5 x (1 + tanh(c (x + 0.044715 x^3))), computed in place on one temporary
    t = x * x
    t *= np.float32(0.044715 * _GELU_C)
    t += np.float32(_GELU_C)
    t *= x
    np.tanh(t, out=t)
    t += 1.0
    t *= x
    t *= 0.5
    return t


def _silu(x: np.ndarray) -> np.ndarray:
    t = np.negative(x)
    np.exp(t, out=t)
    t += 1.0
    np.divide(x, t, out=t)
    return t


@dataclass(frozen=True)
class _Span:
    """One sequence's rows of a forward: rows ``rows`` are its tokens at
    positions start.., and their keys and values go into ``cache``."""

    cache: KVCache
    start: int
    rows: slice


def _attention(be: Backend, cfg: ModelConfig, w: ModelWeights, lw: LayerWeights, il: int, h: np.ndarray,
               spans: Sequence[_Span], rope: np.ndarray) -> np.ndarray:
    T = h.shape[0]
    nh, nkv, dk, dv = cfg.n_head, cfg.n_head_kv, cfg.head_dim_k, cfg.head_dim_v
    qkv = be.linear(h, lw.attn_qkv)  # (T, nh*dk + nkv*dk + nkv*dv), a fresh array
    if lw.attn_qkv_bias is not None:
        qkv += lw.attn_qkv_bias
    q = qkv[:, :nh * dk].reshape(T, nh, dk)
    k = qkv[:, nh * dk:(nh + nkv) * dk].reshape(T, nkv, dk)
    v = qkv[:, (nh + nkv) * dk:].reshape(T, nkv, dv)
    if lw.attn_q_norm is not None:  # per-head RMS norm, before RoPE (the Q norm carries the scale)
        q = rms_norm(q, lw.attn_q_norm, cfg.rms_eps)
        k = rms_norm(k, lw.attn_k_norm, cfg.rms_eps)
        apply_rope(q, rope)
        apply_rope(k, rope)
    else:
        # q and k are adjacent views of qkv: rotate both in one go
        apply_rope(qkv[:, :(nh + nkv) * dk].reshape(T, nh + nkv, dk), rope)
        q *= np.float32(w.q_scale)  # 1/sqrt(d): RoPE is linear, so before or after is alike

    window = cfg.sliding_window if cfg.swa_layers[il] else 0
    attend_rows = getattr(be, "attend_rows", None)  # base.RowsAttention
    if attend_rows is not None and len(spans) == T:  # a row per sequence (forward_batch): one call for all
        out = attend_rows(q, k, v, [s.cache.k[il] for s in spans], [s.cache.v[il] for s in spans],
                          [s.start for s in spans], window, cfg.attn_softcap)
        return be.linear(out, lw.attn_output)
    outs = []
    for s in spans:  # each sequence attends over its own cache
        start, end = s.start, s.start + (s.rows.stop - s.rows.start)
        # (T, heads, d) -> the cache's (heads, positions, d); an F16 cache rounds here
        s.cache.k[il][:, start:end] = k[s.rows].transpose(1, 0, 2)
        s.cache.v[il][:, start:end] = v[s.rows].transpose(1, 0, 2)
        # sliding-window layers: a query at p sees keys p-window+1 .. p, so the
        # oldest query of the span bounds how far back we need to read
        lo = max(0, start - window + 1) if window else 0
        outs.append(be.attend(q[s.rows], s.cache.k[il], s.cache.v[il], start, lo, window, cfg.attn_softcap))
    out = outs[0] if len(outs) == 1 else np.concatenate(outs)  # (T, nh*dv)
    return be.linear(out, lw.attn_output)


def _ffn(be: Backend, cfg: ModelConfig, lw: LayerWeights, h: np.ndarray) -> np.ndarray:
    gu = be.linear(h, lw.ffn_gate_up)  # (T, 2*n_ff)
    gate, up = gu[:, :cfg.n_ff], gu[:, cfg.n_ff:]
    act = _gelu_tanh(gate) if cfg.spec.gemma else _silu(gate)
    act *= up
    return be.linear(act, lw.ffn_down)


def forward(be: Backend, cfg: ModelConfig, w: ModelWeights, cache: KVCache, ids: list[int] | np.ndarray,
            all_logits: bool = False, trace: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
    """Evaluate ``ids`` after what the cache holds; returns float32 logits
    of shape (T, n_vocab) if ``all_logits`` else (n_vocab,) for the last token.
    ``trace(il, x)`` sees the residual stream (T, n_embd) after each layer,
    llama.cpp's ``l_out-{il}``, for benchmarks/llama_cpp_trace.py.

    A backend with a ``forward_step`` (base.WholeStepBackend: the cuda
    backend, whose activations stay on the GPU) runs the whole step itself."""
    whole_step = getattr(be, "forward_step", None)
    if whole_step is not None:
        return whole_step(cfg, w, cache, ids, all_logits, trace)
    ids = np.asarray(ids, dtype=np.int64)
    T = len(ids)
    start = cache.n_past
    cache.reserve(start + T)
    x = _residual_stream(be, cfg, w, ids, np.arange(start, start + T), [_Span(cache, start, slice(0, T))], trace)
    cache.tokens.extend(int(i) for i in ids)
    logits = _logits(be, cfg, w, x if all_logits else x[-1:])  # (T or 1, n_vocab)
    return logits if all_logits else logits[0]


def forward_batch(be: Backend, cfg: ModelConfig, w: ModelWeights, caches: Sequence[KVCache],
                  ids: list[int] | np.ndarray) -> np.ndarray:
    """One decode step of B sequences: ``ids[b]`` after what ``caches[b]``
    holds, each cache at its own position. Returns logits (B, n_vocab), row b
    what ``forward(caches[b], [ids[b]])`` would give."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) != len(caches):
        raise ValueError(f"forward_batch: {len(ids)} tokens for {len(caches)} caches")
    if len({id(c) for c in caches}) != len(caches):
        raise ValueError("forward_batch: a cache appears twice; each sequence needs its own")
    if getattr(be, "forward_step", None) is not None:  # a device step per sequence (its graph, its cache)
        return np.stack([forward(be, cfg, w, c, [i]) for c, i in zip(caches, ids)])
    starts = [c.n_past for c in caches]
    for c, start in zip(caches, starts):
        c.reserve(start + 1)  # before anything is written: a full cache fails the step whole
    spans = [_Span(c, start, slice(b, b + 1)) for b, (c, start) in enumerate(zip(caches, starts))]
    x = _residual_stream(be, cfg, w, ids, np.asarray(starts), spans)
    for c, i in zip(caches, ids):
        c.tokens.append(int(i))
    return _logits(be, cfg, w, x)


def _residual_stream(be: Backend, cfg: ModelConfig, w: ModelWeights, ids: np.ndarray, pos: np.ndarray,
                     spans: Sequence[_Span], trace: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
    """The rows ``ids`` at positions ``pos`` through every layer: (T, n_embd)."""
    x = be.embed(w.token_embd, ids)  # (T, n_embd), only these rows are read
    if cfg.spec.gemma:
        x *= np.float32(math.sqrt(cfg.n_embd))
    return _layers(be, cfg, w, x, pos, spans, range(cfg.n_layer), trace)


def run_layers(be: Backend, cfg: ModelConfig, w: ModelWeights, cache: KVCache, x: np.ndarray, start: int,
               layers: range, trace: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
    """The residual stream x (T, n_embd) at positions start.. through
    ``layers``: the layers ``--gpu-layers`` leaves to the CPU."""
    T = x.shape[0]
    return _layers(be, cfg, w, x, np.arange(start, start + T), [_Span(cache, start, slice(0, T))], layers, trace)


def output_logits(be: Backend, cfg: ModelConfig, w: ModelWeights, x: np.ndarray) -> np.ndarray:
    """Logits (T, n_vocab) of the residual rows x (T, n_embd)."""
    return _logits(be, cfg, w, x)


def _layers(be: Backend, cfg: ModelConfig, w: ModelWeights, x: np.ndarray, pos: np.ndarray, spans: Sequence[_Span],
            layers: range, trace: Callable[[int, np.ndarray], None] | None) -> np.ndarray:
    rope_global = rope_rotations(pos, cfg.n_rot, cfg.rope_base, cfg.rope_freq_scale, w.rope_freqs)
    rope_swa = rope_global
    if any(cfg.swa_layers) and (cfg.rope_base_swa, cfg.rope_freq_scale_swa) != (cfg.rope_base, cfg.rope_freq_scale):
        rope_swa = rope_rotations(pos, cfg.n_rot, cfg.rope_base_swa, cfg.rope_freq_scale_swa, w.rope_freqs)
    eps = cfg.rms_eps
    for il in layers:
        lw = w.layers[il]
        h = rms_norm(x, lw.attn_norm, eps)
        a = _attention(be, cfg, w, lw, il, h, spans, rope_swa if cfg.swa_layers[il] else rope_global)
        if lw.post_attention_norm is not None:
            a = rms_norm(a, lw.post_attention_norm, eps)
        x = x + a  # a new array: what trace() was given stays as it was
        h = rms_norm(x, lw.ffn_norm, eps)
        f = _ffn(be, cfg, lw, h)
        if lw.post_ffw_norm is not None:
            f = rms_norm(f, lw.post_ffw_norm, eps)
        x += f
        if trace is not None:
            trace(il, x)
    return x


def _logits(be: Backend, cfg: ModelConfig, w: ModelWeights, x: np.ndarray) -> np.ndarray:
    x = rms_norm(x, w.output_norm, cfg.rms_eps)
    logits = be.linear(x, w.output)
    if cfg.final_softcap:
        c = np.float32(cfg.final_softcap)
        logits = np.tanh(logits / c) * c
    return logits
