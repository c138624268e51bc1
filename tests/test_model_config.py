"""Hyper-parameters read from GGUF keys, per family."""

from __future__ import annotations

import math

from chord_core.config import config_from_metadata


def gemma3_metadata(**extra):
    md = {
        "general.architecture": "gemma3", "gemma3.embedding_length": 2560, "gemma3.block_count": 34,
        "gemma3.feed_forward_length": 10240, "gemma3.attention.head_count": 8, "gemma3.attention.head_count_kv": 4,
        "gemma3.attention.key_length": 256, "gemma3.attention.sliding_window": 1024,
        "gemma3.rope.freq_base": 1_000_000.0, "tokenizer.ggml.tokens": ["a"] * 10,
    }
    md.update({f"gemma3.{k}": v for k, v in extra.items()})
    return md


def test_gemma3_scales_positions_only_on_global_layers():
    """Gemma 3 4B and up: linear RoPE scaling x8 on the global layers; the
    sliding-window layers keep base 10,000 and no scaling (as llama.cpp)."""
    cfg = config_from_metadata(gemma3_metadata(**{"rope.scaling.type": "linear", "rope.scaling.factor": 8.0}))
    assert cfg.rope_freq_scale == 0.125 and cfg.rope_freq_scale_swa == 1.0
    assert cfg.rope_base == 1_000_000.0 and cfg.rope_base_swa == 10_000.0
    assert cfg.swa_layers[:6] == (True, True, True, True, True, False)
    assert math.isclose(cfg.attn_scale, 1 / 16)


def test_llama_scaling_applies_everywhere():
    md = {"general.architecture": "llama", "llama.embedding_length": 64, "llama.block_count": 2,
          "llama.feed_forward_length": 128, "llama.attention.head_count": 4, "llama.rope.scaling.type": "linear",
          "llama.rope.scaling.factor": 4.0, "tokenizer.ggml.tokens": ["a"] * 10}
    cfg = config_from_metadata(md)
    assert cfg.rope_freq_scale == cfg.rope_freq_scale_swa == 0.25 and not any(cfg.swa_layers)
