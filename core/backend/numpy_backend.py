"""The reference backend: F32 weights and NumPy's BLAS.

Every weight is dequantized to float32 at load (4 bytes a weight, so a
model takes ~4-7x its file size). Slow to decode and large, but every
operation is a plain NumPy expression: the compiled backend is tested
against it, and it runs wherever NumPy does.
"""

from __future__ import annotations

import numpy as np

from ..gguf_file import GGUFFile, ShardedGGUF
from ..quants import dequantize
from .attention_ref import attend_reference
from .base import ROW_EXACT_MAX_T, MatrixPart, attend_by_row


class NumpyBackend:
    name = "numpy"

    def __init__(self, threads: int):
        # BLAS picks its own thread count; kept for the status line
        self.threads = threads

    def load_matrix(self, f: GGUFFile | ShardedGGUF, parts: list[MatrixPart],
                    embedding_only: bool = False) -> np.ndarray:
        rows = sum(shape[0] for _, shape, _ in parts)
        out = np.empty((rows, parts[0][1][1]), dtype=np.float32)  # (rows, cols)
        r = 0
        for name, shape, order in parts:
            t = f.tensors[name]
            # a row block of a C-contiguous array is contiguous: dequantize in place
            dst = out[r:r + shape[0]]
            dequantize(f.raw(name), t.ggml_type, t.shape, name=name, out=dst)
            if order is not None:
                dst[:] = dst[order]
            r += shape[0]
        return out

    def matrix_rows(self, w: np.ndarray) -> int:
        return w.shape[0]

    def linear(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        if x.shape[0] == 1:  # one row: matrix-vector product (BLAS gemv streams W once)
            return (w @ x[0])[None, :]
        if x.shape[0] <= ROW_EXACT_MAX_T:
            # a few rows (a speculative verify step): each row through the same
            # gemv as a decode step, so every row equals its one-token product
            # bit for bit (sgemm sums in another order); greedy speculation then
            # gives exactly the tokens of plain decoding
            return np.matmul(x[:, None, :], w.T)[:, 0]
        return x @ w.T

    def embed(self, w: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return w[ids]

    def attend(self, q, k, v, start, lo, window, softcap):
        if 1 < q.shape[0] <= ROW_EXACT_MAX_T:
            # NumPy's sums over a longer, masked row round differently from a decode step's
            return attend_by_row(lambda qi, p, row_lo: self._attend(qi, k, v, p, row_lo, window, softcap),
                                 q, start, lo, window)
        return self._attend(q, k, v, start, lo, window, softcap)

    @staticmethod
    def _attend(q, k, v, start, lo, window, softcap):
        T, nh, _ = q.shape
        out = np.empty((T, nh * v.shape[2]), np.float32)
        attend_reference(q, k, v, out, start, lo, start + T, window, softcap)
        return out
