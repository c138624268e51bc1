"""The compiled backend: weights stay in their GGUF blocks.

A weight is a view of the file's mmap (nothing dequantizes a whole
tensor); only Q/K rows that neox RoPE permutes are copied, once, at load.
Products run in ``chord_core._kernels`` (block-format matrix kernels with
runtime ISA dispatch, rows split over a thread pool, GIL released) and
attention in ``chord_core._attention`` (flash-style over F32 or F16 caches).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from .. import _attention, _kernels  # ImportError here means: no compiled kernels
from ..gguf_file import GGUFFile, ShardedGGUF
from .base import ROW_EXACT_MAX_T, MatrixPart, attend_by_row


@dataclass(frozen=True)
class QuantPart:
    raw: np.ndarray  # (rows, row_bytes) uint8: the tensor's blocks, usually a view of the mmap
    type_id: int  # ggml type id
    rows: int
    cols: int
    packed: np.ndarray | None = None  # uint8: the rows repacked for the kernels (_kernels.pack_rows), or None


@dataclass(frozen=True)
class QuantMatrix:
    """Row-stacked parts (Q|K|V may be Q4_K beside Q6_K): one kernel call each."""
    parts: tuple[QuantPart, ...]
    rows: int
    cols: int


# Stacked parts of one type up to this size are copied into one matrix at
# load: on small models (SmolLM2, Gemma 3 270M) a decode step is ~200 kernel
# calls of a few microseconds each, and one call instead of three saves a
# pool wake-up per call. Large matrices stay views of the mmap (no copy, no
# second resident copy of their pages).
FUSE_MAX_BYTES = 4 << 20


# rows packed at a time: a view of the mmap gives back each stretch's pages
# as soon as it is packed, so that loading never holds a matrix twice
PACK_CHUNK_BYTES = 8 << 20


def _packed(p: QuantPart, release: Callable[[int, int], None] | None) -> QuantPart:
    """``p`` with its rows repacked for the products, where this kernel path
    has kernels for that form (csrc/kernels/rows_pack.h): a block of 16 rows
    is then a few loads instead of a transpose per call: SmolLM2's products
    at 4 tokens 1.4x faster streamed from memory, 1.7x from cache.
    ``release(lo, hi)``: drops bytes lo..hi of ``p.raw``'s pages once packed
    (``p.raw`` a view of the file), or None."""
    size = _kernels.packed_size(p.type_id, p.rows, p.cols)
    if not size:
        return p
    packed = np.empty(size, np.uint8)
    row_bytes, packed_row_bytes = p.raw.shape[1], size // p.rows
    step = max(16, PACK_CHUNK_BYTES // row_bytes // 16 * 16)  # whole groups of 16 rows
    for r0 in range(0, p.rows, step):
        r1 = min(p.rows, r0 + step)
        _kernels.pack_rows(p.raw[r0:r1], p.type_id, r1 - r0, p.cols,
                           packed[r0 * packed_row_bytes:r1 * packed_row_bytes])
        if release is not None:
            release(r0 * row_bytes, r1 * row_bytes)
    return replace(p, packed=packed)


PACKED_ENV = "CHORD_PACKED"  # 0: products read the file's blocks as they are (the tests' other path)


def packing_by_default() -> bool:
    """Whether a CpuBackend repacks weights unless told: unless CHORD_PACKED=0."""
    return os.environ.get(PACKED_ENV, "1") != "0"


class CpuBackend:
    name = "cpu"

    def __init__(self, threads: int, packed: bool | None = None):
        self.threads = threads
        self.packed = packing_by_default() if packed is None else packed  # repack weights at load

    @property
    def isa(self) -> str:
        return _kernels.isa()

    def load_matrix(self, f: GGUFFile | ShardedGGUF, parts: list[MatrixPart],
                    embedding_only: bool = False) -> QuantMatrix:
        qparts, sources, views = [], [], []  # per part: the tensors it was read from; whether raw is their mmap
        for name, (rows, cols), order in parts:
            t = f.tensors[name]
            raw = np.asarray(f.raw(name), dtype=np.uint8).reshape(rows, -1)  # (rows, row_bytes)
            if order is not None:  # rows are whole blocks: permuting them is a byte copy
                raw = np.ascontiguousarray(raw[order])
            qparts.append(QuantPart(raw, t.ggml_type, rows, cols))
            sources.append([name])
            views.append(order is None)
        total = sum(p.rows for p in qparts)
        if (len(qparts) > 1 and len({p.type_id for p in qparts}) == 1
                and sum(p.raw.nbytes for p in qparts) <= FUSE_MAX_BYTES):
            fused = np.concatenate([p.raw for p in qparts])  # (total rows, row_bytes)
            qparts = [QuantPart(fused, qparts[0].type_id, total, qparts[0].cols)]
            sources, views = [[name for name, _, _ in parts]], [False]
        if self.packed and not embedding_only:  # a lookup reads a few rows: packing would only add a copy
            # a view gives its pages back stretch by stretch as it is packed; a copy
            # (kept for the paths without packed kernels) gives back the file pages
            # it was made from. Products read only the packed form from then on.
            qparts = [_packed(p, partial(f.release, src[0]) if view else None)
                      for p, src, view in zip(qparts, sources, views)]
            for p, src, view in zip(qparts, sources, views):
                if p.packed is not None and not view:
                    for name in src:
                        f.release(name)
        return QuantMatrix(tuple(qparts), total, parts[0][1][1])

    def matrix_rows(self, w: QuantMatrix) -> int:
        return w.rows

    def linear(self, x: np.ndarray, w: QuantMatrix) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((x.shape[0], w.rows), np.float32)  # (T, rows)
        r = 0
        for p in w.parts:
            _kernels.matmul(p.raw, p.type_id, p.rows, p.cols, x, out[:, r:r + p.rows], self.threads, p.packed)
            r += p.rows
        return out

    def embed(self, w: QuantMatrix, ids: np.ndarray) -> np.ndarray:
        p = w.parts[0]
        out = np.empty((len(ids), p.cols), np.float32)
        _kernels.get_rows(p.raw, p.type_id, p.cols, np.ascontiguousarray(ids, dtype=np.int64), out)
        return out

    def attend(self, q, k, v, start, lo, window, softcap):
        T = q.shape[0]
        if 1 < T <= ROW_EXACT_MAX_T and self._decode_attention_differs(k.shape[0], start, T, lo, window):
            return attend_by_row(lambda qi, p, row_lo: self._attend(qi, k, v, p, row_lo, window, softcap),
                                 q, start, lo, window)
        return self._attend(q, k, v, start, lo, window, softcap)

    def attend_rows(self, q, k_new, v_new, ks, vs, starts, window, softcap):
        """A batched decode step's attention in one call (see base.RowsAttention)."""
        out = np.empty((q.shape[0], q.shape[1] * v_new.shape[2]), np.float32)
        _attention.attend_rows(q, k_new, v_new, ks, vs, out, starts, window, float(softcap or 0.0), self.threads)
        return out

    def _decode_attention_differs(self, n_kv: int, start: int, T: int, lo: int, window: int) -> bool:
        """Whether a decode step at some row of this chunk would cut its keys
        otherwise than the chunk does: a window edge (the kernel tiles keys from
        ``lo``, which is each step's own) or a key split (a step whose few kv heads
        leave threads idle splits its keys, the kernel's 2 x 256-key floor)."""
        edge = window > 0 and start + T > window
        split = n_kv < self.threads and start + T - lo >= 512
        return edge or split

    def _attend(self, q, k, v, start, lo, window, softcap):
        T, nh, _ = q.shape
        out = np.empty((T, nh * v.shape[2]), np.float32)
        # Attention runs on the same pool as the products, so even a decode
        # step's few heads split over the threads (one pool, no spinning
        # rival workers: measured +13-31% decode at 2048 tokens of context).
        _attention.attend(np.ascontiguousarray(q), k, v, out, start, lo, start + T, window,
                          float(softcap or 0.0), self.threads)
        return out
