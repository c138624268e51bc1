"""Model weights: GGUF tensors dequantized to float32, named as in GGUF.

Shapes are NumPy order, (rows, cols) = (out_features, in_features), so a
projection is ``x @ W.T`` for a batch and ``W @ x`` for one token.
Q/K/V and gate/up are fused into one matrix each so that a layer costs
two fewer BLAS calls per step; the split points are kept beside them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .config import ModelConfig
from .errors import ModelFormatError
from .gguf_file import GGUFFile
from .quants import dequantize


@dataclass
class LayerWeights:
    attn_norm: np.ndarray  # (n_embd,)
    attn_qkv: np.ndarray  # (n_head*hd_k + n_head_kv*hd_k + n_head_kv*hd_v, n_embd): attn_q|attn_k|attn_v
    attn_qkv_bias: np.ndarray | None  # (same rows,) qwen2 only
    attn_q_norm: np.ndarray | None  # (hd_k,) qwen3/gemma3
    attn_k_norm: np.ndarray | None  # (hd_k,)
    attn_output: np.ndarray  # (n_embd, n_head*hd_v)
    post_attention_norm: np.ndarray | None  # (n_embd,) gemma
    ffn_norm: np.ndarray  # (n_embd,)
    ffn_gate_up: np.ndarray  # (2*n_ff, n_embd): ffn_gate|ffn_up
    ffn_down: np.ndarray  # (n_embd, n_ff)
    post_ffw_norm: np.ndarray | None  # (n_embd,) gemma


@dataclass
class ModelWeights:
    token_embd: np.ndarray  # (n_vocab, n_embd)
    output_norm: np.ndarray  # (n_embd,)
    # (n_vocab, n_embd). Tied embeddings: when the file has no output.weight
    # this is the very same array as token_embd, not a copy.
    output: np.ndarray
    rope_freqs: np.ndarray | None  # (n_rot/2,) llama 3.1+: per-frequency divisors
    layers: list[LayerWeights]

    @property
    def tied(self) -> bool:
        return self.output is self.token_embd


class _Loader:
    """Collects (tensor -> destination slice) jobs, then runs them on a pool:
    NumPy releases the GIL while dequantizing, so two cores load ~2x faster."""

    def __init__(self, f: GGUFFile):
        self.f = f
        self.jobs: list[Callable[[], None]] = []

    def info(self, name: str, shape: tuple[int, ...]):
        t = self.f.tensors.get(name)
        if t is None:
            raise ModelFormatError(f"{self.f.path}: missing tensor {name!r}")
        if t.shape != shape:
            raise ModelFormatError(f"{self.f.path}: tensor {name!r} has shape {t.shape}, expected {shape}")
        return t

    def one(self, name: str, shape: tuple[int, ...], optional: bool = False) -> np.ndarray | None:
        if optional and name not in self.f.tensors:
            return None
        t = self.info(name, shape)
        out = np.empty(shape, dtype=np.float32)
        self.jobs.append(lambda: dequantize(self.f.raw(name), t.ggml_type, t.shape, name=name, out=out))
        return out

    def fused(self, parts: list[tuple[str, tuple[int, ...]]]) -> np.ndarray:
        # every part's shape is checked against the file before anything is
        # allocated: a damaged size key must be an error, not a 200 GB array
        infos = [self.info(name, shape) for name, shape in parts]
        rows = sum(s[0] for _, s in parts)
        tail = parts[0][1][1:]
        out = np.empty((rows,) + tail, dtype=np.float32)
        r = 0
        for (name, shape), t in zip(parts, infos):
            dst = out[r:r + shape[0]]
            # a row block of a C-contiguous array is itself contiguous: dequantize in place
            self.jobs.append(lambda dst=dst, name=name, t=t: dequantize(
                self.f.raw(name), t.ggml_type, t.shape, name=name, out=dst))
            r += shape[0]
        return out

    def run(self, progress: Callable[[float], None] | None = None) -> None:
        done = 0
        with ThreadPoolExecutor(max_workers=2) as pool:
            for fut in [pool.submit(j) for j in self.jobs]:
                fut.result()
                done += 1
                if progress:
                    progress(done / len(self.jobs))


def load_weights(f: GGUFFile, cfg: ModelConfig, progress: Callable[[float], None] | None = None) -> ModelWeights:
    ld = _Loader(f)
    E, V, F = cfg.n_embd, cfg.n_vocab, cfg.n_ff
    nq, nk, nv = cfg.n_head * cfg.head_dim_k, cfg.n_head_kv * cfg.head_dim_k, cfg.n_head_kv * cfg.head_dim_v
    sp = cfg.spec
    token_embd = ld.one("token_embd.weight", (V, E))
    output = ld.one("output.weight", (V, E), optional=True)
    layers = []
    for il in range(cfg.n_layer):
        p = f"blk.{il}."
        bias = None
        if sp.qkv_bias:
            bias = ld.fused([(p + "attn_q.bias", (nq,)), (p + "attn_k.bias", (nk,)), (p + "attn_v.bias", (nv,))])
        layers.append(LayerWeights(
            attn_norm=ld.one(p + "attn_norm.weight", (E,)),
            attn_qkv=ld.fused([(p + "attn_q.weight", (nq, E)), (p + "attn_k.weight", (nk, E)),
                               (p + "attn_v.weight", (nv, E))]),
            attn_qkv_bias=bias,
            attn_q_norm=ld.one(p + "attn_q_norm.weight", (cfg.head_dim_k,)) if sp.qk_norm else None,
            attn_k_norm=ld.one(p + "attn_k_norm.weight", (cfg.head_dim_k,)) if sp.qk_norm else None,
            attn_output=ld.one(p + "attn_output.weight", (E, cfg.n_head * cfg.head_dim_v)),
            post_attention_norm=ld.one(p + "post_attention_norm.weight", (E,)) if sp.gemma else None,
            ffn_norm=ld.one(p + "ffn_norm.weight", (E,)),
            ffn_gate_up=ld.fused([(p + "ffn_gate.weight", (F, E)), (p + "ffn_up.weight", (F, E))]),
            ffn_down=ld.one(p + "ffn_down.weight", (E, F)),
            post_ffw_norm=ld.one(p + "post_ffw_norm.weight", (E,)) if sp.gemma else None,
        ))
    w = ModelWeights(
        token_embd=token_embd,
        output_norm=ld.one("output_norm.weight", (E,)),
        output=output if output is not None else token_embd,
        rope_freqs=ld.one("rope_freqs.weight", (cfg.n_rot // 2,), optional=True),
        layers=layers,
    )
    ld.run(progress)
    if sp.rope_layout == "neox":
        _neox_to_adjacent_pairs(w, cfg)
    _fold_attention_scale(w, cfg)
    return w


def _neox_to_adjacent_pairs(w: ModelWeights, cfg: ModelConfig) -> None:
    """Permute every Q and K head's rows (and their biases and norm weights)
    so that neox RoPE becomes adjacent-pair RoPE (see rope.py)."""
    from .rope import interleave_halves

    perm = interleave_halves(cfg.head_dim_k, cfg.n_rot)
    nq = cfg.n_head * cfg.head_dim_k
    for lw in w.layers:
        for a, n_heads in ((0, cfg.n_head), (nq, cfg.n_head_kv)):
            rows = slice(a, a + n_heads * cfg.head_dim_k)
            m = lw.attn_qkv[rows]
            lw.attn_qkv[rows] = m.reshape(n_heads, cfg.head_dim_k, -1)[:, perm].reshape(m.shape)
            if lw.attn_qkv_bias is not None:
                b = lw.attn_qkv_bias[rows]
                lw.attn_qkv_bias[rows] = b.reshape(n_heads, cfg.head_dim_k)[:, perm].reshape(-1)
        if lw.attn_q_norm is not None:
            lw.attn_q_norm[:] = lw.attn_q_norm[perm]
            lw.attn_k_norm[:] = lw.attn_k_norm[perm]


def _fold_attention_scale(w: ModelWeights, cfg: ModelConfig) -> None:
    """Scale the queries once, in the weights, instead of at every step: into
    the Q norm weight where Q is normalized after projection (qwen3, gemma3),
    else into the Q rows (RoPE is linear, so the order does not matter)."""
    s = np.float32(cfg.attn_scale)
    nq = cfg.n_head * cfg.head_dim_k
    for lw in w.layers:
        if lw.attn_q_norm is not None:
            lw.attn_q_norm *= s
        else:
            lw.attn_qkv[:nq] *= s
            if lw.attn_qkv_bias is not None:
                lw.attn_qkv_bias[:nq] *= s
