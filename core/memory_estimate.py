"""How much memory a model needs before anything of it is allocated, and
the one-line refusal when that is more than the machine has free.

The estimate is weights + KV cache + scratch:

- weights: for the ``cpu`` backend, the tensors as stored (read through
  the mmap, so every page counts once decoding touches it) plus the Q/K
  rows that neox RoPE makes the loader copy, plus F32 copies of the small
  vectors; for ``numpy``, every tensor as F32 (a tied output is the
  embedding, counted once).
- KV cache: a full cache of ``n_ctx`` positions in ``kv_type``.
- scratch: the activations of one prefill chunk, the logits asked for,
  attention's working set (the numpy backend materializes a score block
  per head; the compiled one works in tiles), and the interpreter,
  NumPy and the tokenizer tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import ModelConfig
from .errors import ModelTooLargeError
from .kv_cache import KVCache
from .model_facts import format_size

RUNTIME_BYTES = 150_000_000  # Python, NumPy, the tokenizer's tables: 70-145 MB measured (SmolLM2, Gemma 3)
F32 = 4


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    scratch: int
    n_ctx: int
    kv_type: str
    backend: str

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.scratch

    def describe(self) -> str:
        """"1.2 GB (weights 0.8 GB + KV cache 268.4 MB + scratch 160.2 MB)"."""
        return (f"{format_size(self.total)} (weights {format_size(self.weights)} + KV cache "
                f"{format_size(self.kv_cache)} + scratch {format_size(self.scratch)})")


def resolve_backend(backend: str) -> str:
    """"auto" is whichever backend Model.load would pick."""
    if backend != "auto":
        return backend
    from .backend import kernels_unavailable_reason

    return "cpu" if kernels_unavailable_reason() is None else "numpy"


def _weight_bytes(gguf_file: Any, cfg: ModelConfig, backend: str) -> int:
    tensors = gguf_file.tensors.values()
    if backend == "numpy":
        return sum(t.n_elements for t in tensors) * F32
    total = sum(t.n_bytes for t in tensors)
    total += sum(t.n_elements * F32 for t in tensors if len(t.shape) == 1)  # vectors become F32 copies
    if cfg.spec.rope_layout == "neox":  # permuted Q/K rows are copied out of the mapping
        total += sum(t.n_bytes for name, t in gguf_file.tensors.items()
                     if name.endswith(("attn_q.weight", "attn_k.weight")))
    return total + _packing_bytes(gguf_file)


def _packing_bytes(gguf_file: Any) -> int:
    """What the cpu backend's packed weights add to the file's bytes they
    replace (csrc/kernels/rows_pack.h: Q4_0, Q5_0 and Q8_0 blocks grow by
    2 bytes), where this CPU's kernels pack and CHORD_PACKED is not 0."""
    from .backend import kernels_unavailable_reason

    if kernels_unavailable_reason() is not None:
        return 0
    from . import _kernels
    from .backend.cpu_backend import packing_by_default

    if not packing_by_default():
        return 0
    extra = 0
    for name, t in gguf_file.tensors.items():
        if len(t.shape) != 2 or (name == "token_embd.weight" and "output.weight" in gguf_file.tensors):
            continue  # an embedding only looked up by row is not packed
        rows, cols = t.shape
        try:
            extra += max(0, _kernels.packed_size(t.ggml_type, rows, cols) - t.n_bytes)
        except ValueError:  # a type the kernels lack: loading says so, not the estimate
            pass
    return extra


def _scratch_bytes(cfg: ModelConfig, n_ctx: int, kv_type: str, backend: str, logit_rows: int) -> int:
    from .model import PREFILL_CHUNK  # here: model.py checks memory with this module

    T = min(PREFILL_CHUNK, n_ctx)
    qkv = cfg.n_head * cfg.head_dim_k + cfg.n_head_kv * (cfg.head_dim_k + cfg.head_dim_v)
    # residual, norm output, attention output and its projection; Q|K|V; gate|up and their product
    per_token = 4 * cfg.n_embd + qkv + cfg.n_head * cfg.head_dim_v + 3 * cfg.n_ff
    total = T * per_token * F32 + logit_rows * cfg.n_vocab * F32 + RUNTIME_BYTES
    if backend == "numpy":
        total += cfg.n_head * T * n_ctx * F32  # one layer's (heads, T, n) score block
        if kv_type != "f32":  # the layer's keys and values converted to F32
            total += cfg.n_head_kv * n_ctx * (cfg.head_dim_k + cfg.head_dim_v) * F32
    return total


def estimate_memory(gguf_file: Any, cfg: ModelConfig, n_ctx: int, kv_type: str = "f32",
                    backend: str = "auto", *, logit_rows: int = 1) -> MemoryEstimate:
    """What loading ``gguf_file`` (a GGUFFile or ShardedGGUF; only its tensor
    table is read) and running it with a context of ``n_ctx`` takes.
    ``logit_rows``: positions whose logits are kept at once (perplexity
    scores a whole chunk; generation needs one)."""
    backend = resolve_backend(backend)
    return MemoryEstimate(
        weights=_weight_bytes(gguf_file, cfg, backend),
        kv_cache=KVCache.bytes_for(cfg, n_ctx, kv_type),
        scratch=_scratch_bytes(cfg, n_ctx, kv_type, backend, logit_rows),
        n_ctx=int(n_ctx), kv_type=kv_type, backend=backend,
    )


def estimate_for_file(path: str, n_ctx: int | None = None, kv_type: str = "f32",
                      backend: str = "auto") -> MemoryEstimate:
    """The estimate for a model file, at the context a session opens by
    default (min(training context, model.DEFAULT_N_CTX)) unless ``n_ctx``."""
    from .config import config_from_metadata
    from .gguf_file import open_gguf
    from .model import DEFAULT_N_CTX

    f = open_gguf(path)
    try:
        cfg = config_from_metadata(f.metadata, str(path))
        return estimate_memory(f, cfg, n_ctx or min(cfg.context_length, DEFAULT_N_CTX), kv_type, backend)
    finally:
        f.close()


def available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _advice(est: MemoryEstimate) -> str:
    tips = []
    if est.backend == "numpy":  # F32 weights whatever the quant: the compiled backend is the cure
        tips.append("--backend cpu (weights stay quantized)")
    if est.kv_cache > est.total // 10:
        tips.append(f"a smaller --ctx (now {est.n_ctx})")
        if est.kv_type == "f32":
            tips.append("--kv-type f16")
    if est.backend != "numpy":
        tips.append("a smaller quant")
    return ", ".join(tips[:-1]) + (" or " if len(tips) > 1 else "") + tips[-1]


def check_memory(est: MemoryEstimate, path: str, available: int | None = None) -> None:
    """Raise ModelTooLargeError, one line, when ``est`` needs more than the
    memory available (psutil's estimate unless ``available`` is given)."""
    free = available_memory() if available is None else int(available)
    if est.total > free:
        raise ModelTooLargeError(
            f"{path}: needs about {est.describe()} of memory with a context of {est.n_ctx} "
            f"on the {est.backend} backend, but only {format_size(free)} is available; try {_advice(est)}")
