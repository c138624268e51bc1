"""Per-architecture differences, as data, for the one forward pass in forward.py.

Each supported ``general.architecture`` maps to an ``ArchSpec`` of flags the
forward pass consults; nothing here is a copy of the pass itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchSpec:
    # RoPE layout (llama.cpp's rope_type). "norm" rotates adjacent pairs
    # (x0,x1),(x2,x3)...: llama's GGUF converter permutes Q/K rows so this
    # layout matches HF. "neox" rotates split halves (x_i, x_{i+d/2}).
    rope_layout: str = "norm"
    qkv_bias: bool = False  # qwen2: biases on the Q/K/V projections
    qk_norm: bool = False  # qwen3, gemma3: RMS norm over each head of Q and K before RoPE
    gemma: bool = False  # embeddings * sqrt(n_embd), GELU-tanh gate, post-attn/post-FFN norms
    # sliding-window layers: layer il is windowed when il % period < period - 1
    # (gemma2: every other layer from 0; gemma3: 5 of every 6)
    swa_period: int = 0
    final_softcap: bool = False  # gemma2: tanh soft-capping of the output logits


ARCH_SPECS: dict[str, ArchSpec] = {
    "llama": ArchSpec(),
    "qwen2": ArchSpec(rope_layout="neox", qkv_bias=True),
    "qwen3": ArchSpec(rope_layout="neox", qk_norm=True),
    "gemma2": ArchSpec(rope_layout="neox", gemma=True, swa_period=2, final_softcap=True),
    "gemma3": ArchSpec(rope_layout="neox", gemma=True, qk_norm=True, swa_period=6),
}

SUPPORTED_ARCHITECTURES = tuple(ARCH_SPECS)
