"""``Model``: a loaded GGUF model — config, weights, tokenizer — and the
incremental API generation is built on (KV cache, prefill, decode, truncate)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .backend import make_backend
from .backend.base import Backend
from .config import ModelConfig, config_from_metadata
from .errors import ChordError
from .memory_estimate import check_memory, estimate_memory
from .forward import forward, forward_batch
from .gguf_file import GGUFFile, ShardedGGUF, open_gguf
from .kv_cache import KV_TYPES, KVCache
from .model_facts import model_facts
from .tokenizer import Tokenizer
from .weights import ModelWeights, check_weights, load_weights

DEFAULT_N_CTX = 4096  # like llama.cpp's default; the cache grows lazily up to it
PREFILL_CHUNK = 512  # bounds the (heads, T, n) attention score block


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    architecture: str
    n_params: int
    quant: str  # llama.cpp's ftype name, e.g. "Q4_K_M" (model_facts.quant_name)
    context_length: int
    file_size: int
    general_name: str | None  # the file's own general.name; ``name`` falls back to the file stem
    has_chat_template: bool  # False: a base model, for completion only
    fingerprint: str  # cheap identity: size + mtime + first tensor offset; not a sha256
    load_s: float


class Model:
    def __init__(self, path: str, gguf: GGUFFile | ShardedGGUF, cfg: ModelConfig, weights: ModelWeights, tokenizer,
                 load_s: float, backend: Backend, kv_type: str = "f32", backend_notice: str | None = None):
        self.backend = backend
        self.kv_type = kv_type
        # set when "auto" fell back to numpy: why, and how to get the fast backend
        self.backend_notice = backend_notice
        self.path = path
        self.gguf = gguf
        self.metadata: dict[str, Any] = gguf.metadata
        self.cfg = cfg
        self.weights = weights
        self.tokenizer = tokenizer
        self.info = _model_info(path, gguf, load_s)

    @classmethod
    def load(cls, path: str | os.PathLike, progress: Callable[[float], None] | None = None, *,
             backend: str = "auto", threads: int | None = None, kv_type: str = "f32",
             n_ctx: int | None = None, memory_available: int | None = None,
             gpu_layers: int | None = None) -> "Model":
        """Load a GGUF model. ``backend``: "auto" (compiled kernels when
        they import, else numpy), "cpu" or "numpy"; ``threads``: default the
        cores this process may use; ``kv_type``: "f32" or "f16" KV cache.
        Before any weight is read, the memory it needs with a context of
        ``n_ctx`` (default: the context a session opens with) is checked
        against ``memory_available`` (default: what the OS says is free).
        ``gpu_layers``: on the cuda backend, the leading layers on the GPU
        (default all; the rest and the output run on the CPU)."""
        if kv_type not in KV_TYPES:
            raise ChordError(f"unknown KV cache type {kv_type!r} (choose from {', '.join(KV_TYPES)})")
        be, notice = make_backend(backend, threads, gpu_layers)
        t0 = time.perf_counter()
        path = str(path)
        f = open_gguf(path)
        tok = Tokenizer.from_metadata(f.metadata, path=path)
        cfg = config_from_metadata(f.metadata, path, n_vocab=tok.n_vocab)
        try:
            check_weights(f, cfg)
            est = estimate_memory(f, cfg, n_ctx or min(cfg.context_length, DEFAULT_N_CTX), kv_type, be.name)
            check_memory(est, path, memory_available)
            prepare = getattr(be, "prepare_load", None)  # a GPU backend checks its own memory first
            if prepare is not None:
                prepare(f, cfg, n_ctx or min(cfg.context_length, DEFAULT_N_CTX), path)
            weights = load_weights(f, cfg, be, progress)
        except BaseException:
            f.close()
            raise
        return cls(path, f, cfg, weights, tok, time.perf_counter() - t0, be, kv_type, notice)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def close(self) -> None:
        """Give back the weights and the file mapping now, not whenever the
        last reference goes: an app switching models holds one at a time.
        The model cannot evaluate afterwards."""
        self.weights = None
        self.gguf.close()

    @property
    def threads(self) -> int:
        return self.backend.threads

    # -- text ----------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        if not isinstance(text, str):
            raise ChordError(f"tokenize takes text (a str), got {type(text).__name__}")
        return self.tokenizer.encode(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, ids) -> str:
        return self.tokenizer.decode(self._checked_ids(ids, self.tokenizer.vocab.n_vocab))

    @staticmethod
    def _checked_ids(ids, n_vocab: int) -> list[int]:
        """``ids`` as ints, each below ``n_vocab`` (else a one-line ChordError naming it)."""
        ids = [int(i) for i in ids]
        for position, token in enumerate(ids):
            if not 0 <= token < n_vocab:
                raise ChordError(f"token id {token} at position {position} is outside the vocabulary "
                                 f"(0..{n_vocab - 1})")
        return ids

    @property
    def n_vocab(self) -> int:
        return self.cfg.n_vocab

    # -- evaluation ------------------------------------------------------------
    def new_cache(self, n_ctx: int | None = None) -> KVCache:
        n = n_ctx or min(self.cfg.context_length, DEFAULT_N_CTX)
        make = getattr(self.backend, "new_cache", None)  # base.WholeStepBackend keeps its own cache
        return make(self.cfg, n, self.kv_type) if make is not None else KVCache(self.cfg, n, kv_type=self.kv_type)

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
                rows.append(forward(self.backend, self.cfg, self.weights, cache, chunk, all_logits=True))
            elif last:
                return forward(self.backend, self.cfg, self.weights, cache, chunk)
            else:
                forward(self.backend, self.cfg, self.weights, cache, chunk, all_logits=False)
        return np.concatenate(rows) if len(rows) > 1 else rows[0]

    def eval_batch(self, ids, caches: list[KVCache]) -> np.ndarray:
        """One decode step of several sequences at once: ``ids[b]`` appended
        to ``caches[b]`` (each its own cache, at its own position); logits
        (len(ids), n_vocab), row b equal to ``eval([ids[b]], caches[b])``."""
        if not caches:
            raise ValueError("eval_batch needs at least one sequence")
        return forward_batch(self.backend, self.cfg, self.weights, caches, ids)

    def logits(self, ids) -> np.ndarray:
        """Fresh context; float32 logits at every position, shape (len(ids), n_vocab)."""
        ids = self._checked_ids(ids, self.n_vocab)
        if not ids:
            raise ChordError("logits needs at least one token id")
        cache = self.new_cache(len(ids))
        return self.eval(ids, cache, all_logits=True)


def _model_info(path: str, f: GGUFFile | ShardedGGUF, load_s: float) -> ModelInfo:
    st = os.stat(path)
    facts = model_facts(f.metadata, f.tensors.values(), getattr(f, "size", st.st_size))
    return ModelInfo(
        name=facts.general_name or Path(path).stem, path=path, architecture=f.architecture,
        n_params=facts.n_params, quant=facts.quant, context_length=facts.context_length or 0,
        file_size=facts.size_bytes, general_name=facts.general_name, has_chat_template=facts.has_chat_template,
        fingerprint=f"{facts.size_bytes:x}-{int(st.st_mtime):x}-{f.data_start:x}", load_s=load_s,
    )
