"""The numbers `chord-chat bench` reports, measured the way llama-bench does:
after one untimed warm-up step, prompt processing of N tokens, then
generation of M tokens one at a time, each on top of ``depth`` tokens of
context evaluated first and not timed (llama-bench's ``-d``); 0 is an
empty context."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ChordError
from .kv_cache import KVCache
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
    depth: int  # tokens of context under both timed phases
    backend: str
    threads: int
    kv_type: str
    prefill_runs: tuple[float, ...]  # tok/s of each repetition; the rates above are their medians
    decode_runs: tuple[float, ...]


def peak_rss_mb() -> float:
    """Peak resident memory in decimal MB (10^6 bytes), the unit every size is shown in."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB on Linux
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def run_bench(spec: str, n_prompt: int = 512, n_gen: int = 128, seed: int = 0, *, depth: int = 0,
              repeat: int = 1, load_options: dict[str, Any] | None = None) -> BenchResult:
    """Load ``spec`` (Model.load keywords in ``load_options``), then time a
    prefill of ``n_prompt`` random tokens and ``n_gen`` decode steps, each
    after ``depth`` tokens of context, ``repeat`` times."""
    if n_prompt < 1 or n_gen < 1:
        raise ChordError(f"prompt and generated token counts must be at least 1, got {n_prompt} and {n_gen}")
    if depth < 0:
        raise ChordError(f"--depth must be 0 or more, got {depth}")
    if repeat < 1:
        raise ChordError(f"--repeat must be at least 1, got {repeat}")
    path = resolve_model(spec)
    t0 = time.perf_counter()
    model = Model.load(path, **(load_options or {}))
    load_s = time.perf_counter() - t0
    # prefill and decode each run on top of the depth: each must fit the context
    need = depth + max(n_prompt, n_gen)
    if need > model.cfg.context_length:
        after = f" after {depth} of context" if depth else ""
        raise ChordError(f"{max(n_prompt, n_gen)} tokens{after} do not fit the model's context of "
                         f"{model.cfg.context_length}")
    rng = np.random.default_rng(seed)
    # random ids, as llama-bench uses: the cost does not depend on the text
    context = rng.integers(0, model.n_vocab, depth).tolist()
    prompt = rng.integers(0, model.n_vocab, n_prompt).tolist()
    cache = model.new_cache(need)
    cache.reserve(need)  # growing the cache is not what is timed
    _warm_up(model, cache)
    if context:
        model.eval(context, cache)
    prefill, decode = [], []
    for _ in range(repeat):
        prefill.append(n_prompt / _timed_prefill(model, cache, depth, prompt))
        decode.append(n_gen / _timed_decode(model, cache, depth, n_gen))
    name = name_for_path(path) or Path(path).stem
    return BenchResult(name, model.info.general_name, load_s, n_prompt, float(np.median(prefill)), n_gen,
                       float(np.median(decode)), peak_rss_mb(), depth, model.backend_name, model.threads,
                       model.kv_type, tuple(prefill), tuple(decode))


def _bos(model: Model) -> int:
    return model.tokenizer.bos_id if model.tokenizer.bos_id is not None else 0


def _warm_up(model: Model, cache: KVCache) -> None:
    """One untimed step, as llama-bench warms up: it pages the weights in and
    starts the thread pool, costs the first timed run would otherwise carry."""
    model.eval([_bos(model)], cache)
    cache.truncate(0)


def _timed_prefill(model: Model, cache: KVCache, depth: int, prompt: list[int]) -> float:
    cache.truncate(depth)  # back to the context alone: what a repetition added is forgotten
    t0 = time.perf_counter()
    model.eval(prompt, cache)
    return time.perf_counter() - t0


def _timed_decode(model: Model, cache: KVCache, depth: int, n_gen: int) -> float:
    cache.truncate(depth)
    tok = _bos(model)
    t0 = time.perf_counter()
    for _ in range(n_gen):
        tok = int(np.argmax(model.eval([tok], cache)))
    return time.perf_counter() - t0
