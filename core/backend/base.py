"""The interface ``forward()`` is written against.

A backend owns the form weights take in memory (``load_matrix``) and the
operations whose cost grows with the model: linear layers, the embedding
row lookup and attention over the KV cache. Norms, RoPE and the
activation functions are cheap elementwise NumPy and stay in forward.py.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np

from ..gguf_file import GGUFFile, ShardedGGUF

# One weight matrix in a backend's own form. Rows are output features.
Matrix = Any
# (GGUF tensor name, shape (rows, cols), row order or None). Parts are stacked
# row-wise into one matrix (Q|K|V, gate|up); a row order permutes that part's
# rows (neox RoPE heads, see rope.interleave_halves).
MatrixPart = tuple[str, tuple[int, int], "np.ndarray | None"]

# A chunk of up to this many tokens (a speculative verify step) gives every
# row the very bits a one-token decode step at its position gives, on every
# backend: greedy speculation then picks exactly the tokens plain decoding does.
ROW_EXACT_MAX_T = 32


def attend_by_row(attend_one: Callable[[np.ndarray, int, int], np.ndarray], q: np.ndarray, start: int, lo: int,
                  window: int) -> np.ndarray:
    """Attention of a chunk query by query, each as the decode step at its
    position calls it: ``attend_one(q_row, position, lo)`` with the ``lo``
    that step passes (its own window edge), so the keys it reads, their
    tiling and any key split are those of the decode step."""
    rows = []
    for i in range(q.shape[0]):
        p = start + i
        rows.append(attend_one(q[i:i + 1], p, max(lo, p - window + 1) if window else lo))
    return np.concatenate(rows)


class Backend(Protocol):
    name: str  # "cpu" or "numpy"
    threads: int

    def load_matrix(self, f: GGUFFile | ShardedGGUF, parts: list[MatrixPart],
                    embedding_only: bool = False) -> Matrix:
        """The parts stacked row-wise, shapes already checked by the caller.
        ``embedding_only``: the matrix is only looked up by row (a token
        embedding beside an output matrix of its own), never multiplied."""

    def matrix_rows(self, w: Matrix) -> int: ...

    def linear(self, x: np.ndarray, w: Matrix) -> np.ndarray:
        """x (T, cols) float32 -> x @ W^T, (T, rows) float32."""

    def embed(self, w: Matrix, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` of W as float32 (len(ids), cols); only those rows are read."""

    def attend(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, start: int, lo: int, window: int,
               softcap: float) -> np.ndarray:
        """Causal GQA attention of q (T, n_head, hd_k), already scaled, at
        positions start.., over one layer's cache k (n_head_kv, cap, hd_k),
        v (n_head_kv, cap, hd_v), whose positions lo..start+T-1 are valid.
        ``window`` > 0: a query at p sees only keys p-window+1..p. ``softcap``
        > 0: scores are soft-capped (Gemma 2). Returns (T, n_head*hd_v)."""


class RowsAttention(Protocol):
    """Optional for a Backend: the attention of one decode row per sequence
    (forward_batch's step), each over its own cache, in one call."""

    def attend_rows(self, q: np.ndarray, k_new: np.ndarray, v_new: np.ndarray, ks: list[np.ndarray],
                    vs: list[np.ndarray], starts: list[int], window: int, softcap: float) -> np.ndarray:
        """Row b: its key k_new[b] and value v_new[b] (n_head_kv, hd) written at
        position starts[b] of caches ks[b], vs[b], then what ``attend(q[b:b+1],
        ks[b], vs[b], starts[b], lo, window, softcap)`` returns for that row, bit
        for bit (lo: the window's edge, else 0). Returns (rows, n_head*hd_v)."""


class WholeStepBackend(Protocol):
    """A backend whose activations live on its own device (the cuda backend):
    ``forward()`` hands it the whole step, so nothing crosses to the host
    between the layers, and its KV cache is its own (``Model.new_cache``).
    The CPU backends leave both out and keep forward.py's NumPy path."""

    def new_cache(self, cfg: Any, n_ctx: int, kv_type: str) -> Any:
        """A cache with KVCache's bookkeeping (tokens, n_past, reserve, truncate)."""

    def forward_step(self, cfg: Any, w: Any, cache: Any, ids: Any, all_logits: bool,
                     trace: Callable[[int, np.ndarray], None] | None) -> np.ndarray:
        """What forward() returns for these arguments."""
