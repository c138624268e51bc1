"""``Model``: a loaded GGUF model — config, weights, tokenizer — and the
incremental API generation is built on (KV cache, prefill, decode, truncate)."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import ModelConfig, config_from_metadata
from .forward import forward
from .gguf_file import GGUFFile, ShardedGGUF, open_gguf
from .kv_cache import KVCache
from .quants import type_name
from .weights import ModelWeights, load_weights

DEFAULT_N_CTX = 4096  # like llama.cpp's default; the cache grows lazily up to it
PREFILL_CHUNK = 512  # bounds the (heads, T, n) attention score block


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    architecture: str
    n_params: int
    quant: str  # the most common type among the 2-D weights, e.g. "Q4_K"
    context_length: int
    file_size: int
    fingerprint: str  # cheap identity: size + mtime + first tensor offset; not a sha256
    load_s: float


class Model:
    def __init__(self, path: str, gguf: GGUFFile | ShardedGGUF, cfg: ModelConfig, weights: ModelWeights, tokenizer, load_s: float):
        self.path = path
        self.gguf = gguf
        self.metadata: dict[str, Any] = gguf.metadata
        self.cfg = cfg
        self.weights = weights
        self.tokenizer = tokenizer
        self.info = _model_info(path, gguf, load_s)

    @classmethod
    def load(cls, path: str | os.PathLike, progress: Callable[[float], None] | None = None) -> "Model":
        from .tokenizer import Tokenizer

        t0 = time.perf_counter()
        path = str(path)
        f = open_gguf(path)
        tok = Tokenizer.from_metadata(f.metadata, path=path)
        cfg = config_from_metadata(f.metadata, path, n_vocab=tok.n_vocab)
        weights = load_weights(f, cfg, progress)
        return cls(path, f, cfg, weights, tok, time.perf_counter() - t0)

    # -- text ----------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        return self.tokenizer.encode(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids])

    @property
    def n_vocab(self) -> int:
        return self.cfg.n_vocab

    # -- evaluation ------------------------------------------------------------
    def new_cache(self, n_ctx: int | None = None) -> KVCache:
        n = n_ctx or min(self.cfg.context_length, DEFAULT_N_CTX)
        return KVCache(self.cfg, n)

    def eval(self, ids, cache: KVCache, all_logits: bool = False) -> np.ndarray:
        """Append ``ids`` to the cache (prefill in chunks of PREFILL_CHUNK, or
        one decode step) and return logits: (n_vocab,) for the last token, or
        (len(ids), n_vocab) with ``all_logits``."""
        ids = list(ids)
        if not ids:
            raise ValueError("eval needs at least one token")
        cache.reserve(cache.n_past + len(ids))
        rows = []
        for i in range(0, len(ids), PREFILL_CHUNK):
            chunk = ids[i:i + PREFILL_CHUNK]
            last = i + PREFILL_CHUNK >= len(ids)
            if all_logits:
                rows.append(forward(self.cfg, self.weights, cache, chunk, all_logits=True))
            elif last:
                return forward(self.cfg, self.weights, cache, chunk)
            else:
                forward(self.cfg, self.weights, cache, chunk, all_logits=False)
        return np.concatenate(rows) if len(rows) > 1 else rows[0]

    def logits(self, ids) -> np.ndarray:
        """Fresh context; float32 logits at every position, shape (len(ids), n_vocab)."""
        ids = list(ids)
        cache = self.new_cache(max(len(ids), 1))
        return self.eval(ids, cache, all_logits=True)


def _model_info(path: str, f: GGUFFile | ShardedGGUF, load_s: float) -> ModelInfo:
    md = f.metadata
    st = os.stat(path)
    size = getattr(f, "size", st.st_size)
    counts = Counter(t.ggml_type for t in f.tensors.values() if len(t.shape) == 2)
    quant = type_name(counts.most_common(1)[0][0]) if counts else "?"
    name = str(md.get("general.name") or Path(path).stem)
    arch = f.architecture
    return ModelInfo(
        name=name, path=path, architecture=arch,
        n_params=sum(t.n_elements for t in f.tensors.values()), quant=quant,
        context_length=int(md.get(f"{arch}.context_length", 0) or 0), file_size=size,
        fingerprint=f"{size:x}-{int(st.st_mtime):x}-{f.data_start:x}", load_s=load_s,
    )
