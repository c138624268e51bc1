"""How a weight matrix is laid out on the GPU: its GGUF blocks split into
planes, one per field, so that every field a kernel loads is aligned to its
own size (a Q6_K block is 210 bytes, a Q4_0 block 18: fields inside them
sit at odd offsets). Same bytes, same bits as the file; no dequantization.

A plane is an array (rows, blocks per row, field bytes). quant_blocks.cuh
reads plane i of a type in the order given here. Types without a decoder
there are converted to F16 on the host first (``to_f16_rows``).

NumPy only: the layout is checked on any machine (tests/test_cuda_layout.py).
"""

from __future__ import annotations

import numpy as np

from ...quants import REGISTRY, dequantize
from .sources import DECODERS

F16_ID = 1
# ggml type id -> [(offset, size)] of each plane's field within the block,
# in the order quant_blocks.cuh's decoders take them as P[0], P[1], ...
PLANES: dict[int, list[tuple[int, int]]] = {
    2: [(0, 2), (2, 16)],  # Q4_0: d | qs
    3: [(0, 4), (4, 16)],  # Q4_1: d, m | qs
    6: [(0, 2), (2, 4), (6, 16)],  # Q5_0: d | qh | qs
    7: [(0, 4), (4, 4), (8, 16)],  # Q5_1: d, m | qh | qs
    8: [(0, 2), (2, 32)],  # Q8_0: d | qs
    12: [(0, 16), (16, 128)],  # Q4_K: d, dmin, scales | qs
    13: [(0, 16), (16, 32), (48, 128)],  # Q5_K: d, dmin, scales | qh | qs
    14: [(0, 128), (128, 64), (192, 16), (208, 2)],  # Q6_K: ql | qh | scales | d
    1: [(0, 64)],  # F16, in "blocks" of 32 values: the row as it is
}
assert set(PLANES) == set(DECODERS)


def device_type(type_id: int) -> int:
    """The type a tensor of ``type_id`` has on the GPU."""
    return type_id if type_id in PLANES else F16_ID


def block_shape(type_id: int) -> tuple[int, int]:
    """(elements, bytes) of one block as the planes see it."""
    if type_id == F16_ID:
        return 32, 64
    q = REGISTRY[type_id]
    return q.block_elems, q.block_bytes


def to_f16_rows(raw: np.ndarray, type_id: int, rows: int, cols: int) -> np.ndarray:
    """A matrix of a type with no GPU decoder as F16 bytes (rows, cols*2)."""
    f32 = dequantize(raw, type_id, (rows, cols))
    return f32.astype(np.float16).view(np.uint8).reshape(rows, cols * 2)


def split_planes(raw: np.ndarray, type_id: int, rows: int, cols: int) -> list[np.ndarray]:
    """The GGUF bytes (rows, row_bytes) of a decodable type -> its planes,
    each C-contiguous (rows, blocks per row, field bytes)."""
    elems, nbytes = block_shape(type_id)
    blocks = np.asarray(raw, dtype=np.uint8).reshape(rows, cols // elems, nbytes)
    return [np.ascontiguousarray(blocks[:, :, off:off + size]) for off, size in PLANES[type_id]]


def join_planes(planes: list[np.ndarray], type_id: int) -> np.ndarray:
    """split_planes undone: (rows, row_bytes) GGUF bytes. For tests."""
    rows, nb = planes[0].shape[:2]
    _, nbytes = block_shape(type_id)
    out = np.empty((rows, nb, nbytes), np.uint8)
    for (off, size), p in zip(PLANES[type_id], planes):
        out[:, :, off:off + size] = p
    return out.reshape(rows, nb * nbytes)
