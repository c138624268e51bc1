"""The numbers `chord-chat bench` reports, measured the way llama-bench does:
prompt processing of N tokens from an empty context, then generation of
M tokens one at a time."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ChordError
from .library import name_for_path, resolve_model
from .model import Model


@dataclass
class BenchResult:
    model: str  # the library name (the file name for a model outside the library)
    general_name: str | None  # the file's own general.name
    load_s: float
    prefill_tokens: int
    prefill_tok_s: float
    decode_tokens: int
    decode_tok_s: float
    peak_rss_mb: float


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024


def run_bench(spec: str, n_prompt: int = 512, n_gen: int = 128, seed: int = 0) -> BenchResult:
    if n_prompt < 1 or n_gen < 1:
        raise ChordError(f"prompt and generated token counts must be at least 1, got {n_prompt} and {n_gen}")
    path = resolve_model(spec)
    t0 = time.perf_counter()
    model = Model.load(path)
    load_s = time.perf_counter() - t0
    # prefill and decode run on caches of their own: each must fit the context
    if max(n_prompt, n_gen) > model.cfg.context_length:
        raise ChordError(f"{max(n_prompt, n_gen)} tokens do not fit the model's context of {model.cfg.context_length}")
    rng = np.random.default_rng(seed)
    # random ids, as llama-bench uses: the cost does not depend on the text
    prompt = rng.integers(0, model.n_vocab, n_prompt).tolist()
    cache = model.new_cache(n_prompt + n_gen + 8)
    t0 = time.perf_counter()
    model.eval(prompt, cache)
    prefill_s = time.perf_counter() - t0

    cache = model.new_cache(n_gen + 8)
    tok = model.tokenizer.bos_id if model.tokenizer.bos_id is not None else 0
    t0 = time.perf_counter()
    for _ in range(n_gen):
        tok = int(np.argmax(model.eval([tok], cache)))
    decode_s = time.perf_counter() - t0
    name = name_for_path(path) or Path(path).stem
    return BenchResult(name, model.info.general_name, load_s, n_prompt, n_prompt / prefill_s, n_gen,
                       n_gen / decode_s, peak_rss_mb())
