"""Model weights, named as in GGUF, in the form the backend keeps them.

Matrices (``load_matrix``) are whatever the backend computes on: F32
arrays for ``numpy``, block views of the mmap for ``cpu``. Rows are output
features, so a projection is ``x @ W.T``. Q/K/V and gate/up are stacked
row-wise into one matrix each (one call instead of three). Vectors (norms,
biases, rope_freqs) are always F32 arrays: they are tiny and elementwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .backend.base import Backend, MatrixPart
from .config import ModelConfig
from .errors import ModelFormatError
from .gguf_file import GGUFFile, ShardedGGUF
from .quants import check_supported, dequantize
from .rope import interleave_halves


@dataclass
class LayerWeights:
    attn_norm: np.ndarray  # (n_embd,)
    attn_qkv: Any  # (n_head*hd_k + n_head_kv*hd_k + n_head_kv*hd_v, n_embd): attn_q|attn_k|attn_v
    attn_qkv_bias: np.ndarray | None  # (same rows,) qwen2 only
    attn_q_norm: np.ndarray | None  # (hd_k,) qwen3/gemma3
    attn_k_norm: np.ndarray | None  # (hd_k,)
    attn_output: Any  # (n_embd, n_head*hd_v)
    post_attention_norm: np.ndarray | None  # (n_embd,) gemma
    ffn_norm: np.ndarray  # (n_embd,)
    ffn_gate_up: Any  # (2*n_ff, n_embd): ffn_gate|ffn_up
    ffn_down: Any  # (n_embd, n_ff)
    post_ffw_norm: np.ndarray | None  # (n_embd,) gemma


@dataclass
class ModelWeights:
    token_embd: Any  # (n_vocab, n_embd)
    output_norm: np.ndarray  # (n_embd,)
    # (n_vocab, n_embd). Tied embeddings: when the file has no output.weight
    # this is the very same object as token_embd, not a copy.
    output: Any
    rope_freqs: np.ndarray | None  # (n_rot/2,) llama 3.1+: per-frequency divisors
    layers: list[LayerWeights]
    # the 1/sqrt(d) attention scale still to apply to Q at run time: 1.0
    # when it is folded into the Q norm weight (qwen3, gemma3); quantized Q
    # rows cannot absorb it
    q_scale: float

    @property
    def tied(self) -> bool:
        return self.output is self.token_embd


class _Reader:
    """Checks each tensor against the file before anything is allocated
    (a damaged size key must be an error, not a 200 GB array)."""

    def __init__(self, f: GGUFFile | ShardedGGUF, backend: Backend, n_tensors: int,
                 progress: Callable[[float], None] | None):
        self.f, self.backend, self.progress = f, backend, progress
        self.n_tensors, self.done = max(1, n_tensors), 0

    def check(self, name: str, shape: tuple[int, ...]) -> None:
        t = self.f.tensors.get(name)
        if t is None:
            raise ModelFormatError(f"{self.f.path}: missing tensor {name!r}")
        if t.shape != shape:
            raise ModelFormatError(f"{self.f.path}: tensor {name!r} has shape {t.shape}, expected {shape}")
        check_supported(t.ggml_type, name)

    def _tick(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress(min(1.0, self.done / self.n_tensors))

    def vector(self, name: str, shape: tuple[int, ...], optional: bool = False) -> np.ndarray | None:
        if optional and name not in self.f.tensors:
            return None
        self.check(name, shape)
        t = self.f.tensors[name]
        out = dequantize(self.f.raw(name), t.ggml_type, t.shape, name=name)
        self._tick(1)
        return out

    def vectors(self, names: list[tuple[str, tuple[int, ...]]]) -> np.ndarray:
        return np.concatenate([self.vector(n, s) for n, s in names])

    def matrix(self, parts: list[MatrixPart], optional: bool = False, embedding_only: bool = False) -> Any:
        if optional and parts[0][0] not in self.f.tensors:
            return None
        for name, shape, _ in parts:
            self.check(name, shape)
        m = self.backend.load_matrix(self.f, parts, embedding_only=embedding_only)
        self._tick(len(parts))
        return m


class _CheckOnly:
    """A backend that loads nothing: ``check_weights`` walks the same
    tensors as ``load_weights`` without allocating any matrix."""
    name = "check"

    def load_matrix(self, f, parts, embedding_only=False):
        return None


def check_weights(f: GGUFFile | ShardedGGUF, cfg: ModelConfig) -> None:
    """Every tensor the model needs is present, of the expected shape and a
    type we run; raises the one-line error otherwise. Reads only the small
    vectors, so it runs before the memory check and any large allocation."""
    load_weights(f, cfg, _CheckOnly())


def _head_rows(n_heads: int, head_dim: int, perm: np.ndarray | None) -> np.ndarray | None:
    """The row order that applies ``perm`` inside each of n_heads heads."""
    if perm is None:
        return None
    return (np.arange(n_heads)[:, None] * head_dim + perm[None, :]).reshape(-1)


def load_weights(f: GGUFFile | ShardedGGUF, cfg: ModelConfig, backend: Backend,
                 progress: Callable[[float], None] | None = None) -> ModelWeights:
    E, V, F = cfg.n_embd, cfg.n_vocab, cfg.n_ff
    nh, nkv, dk, dv = cfg.n_head, cfg.n_head_kv, cfg.head_dim_k, cfg.head_dim_v
    sp = cfg.spec
    # neox RoPE rotates split halves; permuting every Q/K head's rows makes
    # it adjacent-pair RoPE like llama's (rope.py), one code path for all
    perm = interleave_halves(dk, cfg.n_rot) if sp.rope_layout == "neox" else None
    rd = _Reader(f, backend, len(f.tensors), progress)
    output = rd.matrix([("output.weight", (V, E), None)], optional=True)
    # with an output matrix of its own, the embedding is only looked up by row
    token_embd = rd.matrix([("token_embd.weight", (V, E), None)], embedding_only=output is not None)
    layers = []
    for il in range(cfg.n_layer):
        p = f"blk.{il}."
        bias = None
        if sp.qkv_bias:
            bias = rd.vectors([(p + "attn_q.bias", (nh * dk,)), (p + "attn_k.bias", (nkv * dk,)),
                               (p + "attn_v.bias", (nkv * dv,))])
            if perm is not None:
                bias[:nh * dk] = bias[:nh * dk][_head_rows(nh, dk, perm)]
                bias[nh * dk:(nh + nkv) * dk] = bias[nh * dk:(nh + nkv) * dk][_head_rows(nkv, dk, perm)]
        q_norm = k_norm = None
        if sp.qk_norm:
            q_norm = rd.vector(p + "attn_q_norm.weight", (dk,))
            k_norm = rd.vector(p + "attn_k_norm.weight", (dk,))
            if perm is not None:
                q_norm, k_norm = q_norm[perm], k_norm[perm]
            q_norm = q_norm * np.float32(cfg.attn_scale)  # the scale folded in (see ModelWeights.q_scale)
        layers.append(LayerWeights(
            attn_norm=rd.vector(p + "attn_norm.weight", (E,)),
            attn_qkv=rd.matrix([(p + "attn_q.weight", (nh * dk, E), _head_rows(nh, dk, perm)),
                                (p + "attn_k.weight", (nkv * dk, E), _head_rows(nkv, dk, perm)),
                                (p + "attn_v.weight", (nkv * dv, E), None)]),
            attn_qkv_bias=bias,
            attn_q_norm=q_norm,
            attn_k_norm=k_norm,
            attn_output=rd.matrix([(p + "attn_output.weight", (E, nh * dv), None)]),
            post_attention_norm=rd.vector(p + "post_attention_norm.weight", (E,)) if sp.gemma else None,
            ffn_norm=rd.vector(p + "ffn_norm.weight", (E,)),
            ffn_gate_up=rd.matrix([(p + "ffn_gate.weight", (F, E), None), (p + "ffn_up.weight", (F, E), None)]),
            ffn_down=rd.matrix([(p + "ffn_down.weight", (E, F), None)]),
            post_ffw_norm=rd.vector(p + "post_ffw_norm.weight", (E,)) if sp.gemma else None,
        ))
    return ModelWeights(
        token_embd=token_embd,
        output_norm=rd.vector("output_norm.weight", (E,)),
        output=output if output is not None else token_embd,
        rope_freqs=rd.vector("rope_freqs.weight", (cfg.n_rot // 2,), optional=True),
        layers=layers,
        q_scale=1.0 if sp.qk_norm else float(cfg.attn_scale),
    )
