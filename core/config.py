"""Model hyper-parameters, built from GGUF metadata keys (``{arch}.*``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arch import ARCH_SPECS, SUPPORTED_ARCHITECTURES, ArchSpec
from .errors import ModelFormatError, UnsupportedModelError

# Far above any real model; a corrupt count or size would otherwise cost per-layer
# tables or index arrays of millions before the tensors' shapes are checked.
MAX_BLOCKS = 4096  # layers; the deepest models have a few hundred
MAX_WIDTH = 1 << 20  # embedding, feed-forward and head sizes, head counts


@dataclass(frozen=True)
class ModelConfig:
    arch: str
    spec: ArchSpec
    n_vocab: int
    n_embd: int
    n_layer: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_rot: int
    rms_eps: float
    rope_base: float  # global layers
    rope_base_swa: float  # sliding-window layers
    rope_freq_scale: float  # global layers
    rope_freq_scale_swa: float  # sliding-window layers
    context_length: int
    sliding_window: int  # 0: none
    swa_layers: tuple[bool, ...]
    attn_scale: float  # multiplies Q before QK^T
    attn_softcap: float  # 0: none
    final_softcap: float  # 0: none

    @property
    def n_gqa(self) -> int:
        return self.n_head // self.n_head_kv


def _scalar(v: Any, layer: int = 0) -> Any:
    # some keys (head_count, head_count_kv, feed_forward_length) may be
    # per-layer arrays in GGUF; we run uniform models only
    if isinstance(v, np.ndarray):
        return v[layer].item() if v.size > layer else None
    return v


def _typed(path: str, full: str, value: Any, kind: type) -> Any:
    """``value`` as an int or float, or a one-line error naming the key: a
    damaged or hand-made file may hold a string, a NaN or an empty array."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok and kind is int:
        ok = float(value).is_integer()
    if ok and kind is float:
        ok = math.isfinite(float(value))
    if not ok:
        raise ModelFormatError(f"{path}: metadata key {full!r} is {value!r}, expected {'an integer' if kind is int else 'a number'}")
    return kind(value)


def config_from_metadata(md: dict[str, Any], path: str = "?", n_vocab: int | None = None) -> ModelConfig:
    arch = str(md.get("general.architecture", ""))
    if arch not in ARCH_SPECS:
        raise UnsupportedModelError(
            f"{path}: architecture {arch!r} is not supported (supported: {', '.join(SUPPORTED_ARCHITECTURES)})")
    spec = ARCH_SPECS[arch]

    def key(name: str, default: Any = None, required: bool = False, kind: type | None = None,
            positive: bool = False, at_most: int | None = None) -> Any:
        full = f"{arch}.{name}"
        if full in md:
            value = _scalar(md[full])
            if value is None:
                raise ModelFormatError(f"{path}: metadata key {full!r} is an empty array")
        elif required:
            raise ModelFormatError(f"{path}: missing metadata key {full!r}")
        else:
            value = default
        if kind is not None and value is not None:
            value = _typed(path, full, value, kind)
            if positive and value <= 0:
                raise ModelFormatError(f"{path}: metadata key {full!r} is {value}, expected a positive value")
            if at_most is not None and value > at_most:
                raise ModelFormatError(f"{path}: metadata key {full!r} is {value}, more than any model has "
                                       f"(at most {at_most})")
        return value

    n_embd = key("embedding_length", required=True, kind=int, positive=True, at_most=MAX_WIDTH)
    n_head = key("attention.head_count", required=True, kind=int, positive=True, at_most=MAX_WIDTH)
    n_head_kv = key("attention.head_count_kv", n_head, kind=int, positive=True, at_most=MAX_WIDTH)
    if f"{arch}.attention.key_length" not in md and n_embd % n_head:
        raise ModelFormatError(f"{path}: embedding_length {n_embd} is not a multiple of head_count {n_head}, "
                               f"and no {arch}.attention.key_length says the head size")
    head_k = key("attention.key_length", n_embd // n_head, kind=int, positive=True, at_most=MAX_WIDTH)
    head_v = key("attention.value_length", head_k, kind=int, positive=True, at_most=MAX_WIDTH)
    n_layer = key("block_count", required=True, kind=int, positive=True, at_most=MAX_BLOCKS)
    if n_vocab is None:
        toks = md.get("tokenizer.ggml.tokens")
        n_vocab = key("vocab_size", len(toks) if toks is not None else 0, kind=int)
    if n_head % n_head_kv:
        raise ModelFormatError(f"{path}: head counts {n_head}/{n_head_kv} are not a valid GQA layout")

    window = key("attention.sliding_window", 0, kind=int) or 0
    swa_layers = tuple(
        bool(window and spec.swa_period and il % spec.swa_period < spec.swa_period - 1) for il in range(n_layer))
    rope_base = key("rope.freq_base", 10000.0, kind=float, positive=True)
    # gemma3's windowed layers keep the original 10k base unless the file says otherwise
    rope_base_swa = key("rope.freq_base_swa", 10000.0 if arch == "gemma3" else rope_base, kind=float, positive=True)
    scale_type = key("rope.scaling.type", "none")
    factor = key("rope.scaling.factor", 1.0, kind=float) or 1.0
    n_rot = key("rope.dimension_count", head_k, kind=int, positive=True)
    if n_rot > head_k or n_rot % 2:
        raise ModelFormatError(f"{path}: metadata key '{arch}.rope.dimension_count' is {n_rot}, "
                               f"expected an even number up to the head size {head_k}")
    freq_scale = 1.0 / factor if scale_type == "linear" and factor > 0 else 1.0

    attn_scale = 1.0 / math.sqrt(head_k)
    if spec.gemma and n_layer in (46, 62):
        # Gemma 2/3 27B scale queries by 1/sqrt(n_embd/n_head), not 1/sqrt(head_dim)
        attn_scale = 1.0 / math.sqrt(n_embd / n_head)
    return ModelConfig(
        arch=arch, spec=spec, n_vocab=n_vocab, n_embd=n_embd, n_layer=n_layer,
        n_ff=key("feed_forward_length", required=True, kind=int, positive=True, at_most=MAX_WIDTH), n_head=n_head, n_head_kv=n_head_kv,
        head_dim_k=head_k, head_dim_v=head_v, n_rot=n_rot,
        rms_eps=key("attention.layer_norm_rms_epsilon", 1e-5, kind=float),
        rope_base=rope_base, rope_base_swa=rope_base_swa, rope_freq_scale=freq_scale,
        # gemma3's windowed layers are never position-scaled (llama.cpp's rope_freq_scale_train_swa = 1)
        rope_freq_scale_swa=1.0 if arch == "gemma3" else freq_scale,
        context_length=key("context_length", 2048, kind=int, positive=True), sliding_window=window,
        swa_layers=swa_layers, attn_scale=attn_scale,
        attn_softcap=key("attn_logit_softcapping", 0.0, kind=float) or 0.0,
        final_softcap=(key("final_logit_softcapping", 0.0, kind=float) or 0.0) if spec.final_softcap else 0.0,
    )
