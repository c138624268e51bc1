"""Weight matrices on the GPU and the product with them.

A matrix is its parts (Q|K|V may be Q4_K beside Q6_K), each uploaded once
as planes of its GGUF blocks (layouts.py). ``linear`` picks the kernel by
the number of rows T: up to ROW_EXACT_MAX_T, the GEMV once per row (each
row equals its one-token product bit for bit); past that, the part is
dequantized to F16 in a scratch buffer and multiplied through cuBLAS on the
tensor cores, F32 accumulation and output. The k-quants' GEMV
(sources.Q8_DECODERS) takes the activations in two 8-bit levels
(act_q8.py), quantized once per call into the scratch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cupy as cp
import numpy as np
from cupy.cuda import cublas

from ..base import ROW_EXACT_MAX_T
from . import act_q8, sources
from .device import NULL, i32, launch, ptr
from .layouts import PLANES, device_type, split_planes, to_f16_rows

WARPS = 4  # per GEMV block
CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT = 2, 0, 68, -1
# GEMV shape (sources.GEMV_SHAPES) by (type, many rows): matrices of at
# least MANY_ROWS rows fill the GPU with one warp group per row block; fewer
# rows split each row's units over several warps. Measured on an H100 by
# benchmarks/cuda_check.py (a random Mistral-7B-shaped model).
MANY_ROWS = 8192
GEMV_SHAPE = {(t, many): (2, 1, 1) if many else (2, 1, 4) for t in sources.DECODERS for many in (False, True)}
GEMV_SHAPE.update({(12, True): (4, 1, 1), (12, False): (4, 1, 1), (14, True): (2, 2, 1), (14, False): (1, 1, 2)})
# the same for the integer GEMV of the k-quants (sources.GEMV_Q8_SHAPES)
GEMV_Q8_SHAPE = {(t, many): (2, 2, 1) for t in sources.Q8_DECODERS for many in (False, True)}


@dataclass
class DevicePart:
    type_id: int  # the device type (layouts.device_type)
    rows: int
    cols: int
    planes: list  # cupy uint8 arrays, PLANES[type_id] order

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.planes)


@dataclass
class DeviceMatrix:
    parts: tuple[DevicePart, ...]
    rows: int
    cols: int
    host: Any = None  # the host backend's form, where rows are also looked up on the CPU (token_embd)

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)


def upload_part(raw: np.ndarray, type_id: int, rows: int, cols: int) -> DevicePart:
    """GGUF bytes (rows, row_bytes) -> a part on the GPU (converted to F16
    first when the type has no decoder)."""
    t = device_type(type_id)
    if t != type_id:
        raw = to_f16_rows(raw, type_id, rows, cols)
    return DevicePart(t, rows, cols, [cp.asarray(p) for p in split_planes(raw, t, rows, cols)])


def part_bytes(type_id: int, n_bytes: int, n_elements: int) -> int:
    """What a tensor of n_bytes in the file takes on the GPU."""
    return n_bytes if device_type(type_id) == type_id else 2 * n_elements


class Scratch:
    """The F16 buffers of the tensor-core path, sized once for the model."""

    def __init__(self, max_part_elems: int, max_rows_x: int, max_cols: int):
        self.w16 = cp.empty(max_part_elems, cp.float16)
        self.x16 = cp.empty(max_rows_x * max_cols, cp.float16)
        self.x_scale = cp.empty(max_rows_x, cp.float32)
        self.xq = cp.empty(min(max_rows_x, ROW_EXACT_MAX_T) * act_q8.row_bytes(max_cols), cp.uint8)
        self.alpha = np.ones(1, np.float32)
        self.beta = np.zeros(1, np.float32)

    @staticmethod
    def nbytes(max_part_elems: int, max_rows_x: int, max_cols: int) -> int:
        q8 = min(max_rows_x, ROW_EXACT_MAX_T) * act_q8.row_bytes(max_cols)
        return 2 * max_part_elems + 2 * max_rows_x * max_cols + 4 * max_rows_x + q8


def _planes_args(p: DevicePart) -> list:
    args = [ptr(a) for a in p.planes]
    return args + [NULL] * (4 - len(args))


def gemv(p: DevicePart, x, x_off: int, ldx: int, T: int, y, y_off: int, ldy: int, shape=None) -> None:
    """y[t, y_off + r] = part[r] . x[t] for t < T (offsets in elements), float
    activations; ``shape`` (sources.GEMV_SHAPES) defaults to GEMV_SHAPE's."""
    shape = shape or GEMV_SHAPE[p.type_id, p.rows >= MANY_ROWS]
    rows_per_block = WARPS // shape[2] * shape[0]
    grid = ((p.rows + rows_per_block - 1) // rows_per_block, T)
    launch("matmul", sources.gemv_name(p.type_id, shape), grid, (32 * WARPS,),
           _planes_args(p) + [i32(p.rows), i32(p.cols), ptr(x, 4 * x_off), i32(ldx), ptr(y, 4 * y_off), i32(ldy)])


def quantize_x(x, x_off: int, ldx: int, T: int, cols: int, xq) -> None:
    """xq[t] = x[t, x_off:x_off+cols] in two 8-bit levels (act_q8.py's bytes)."""
    launch("matmul_q8", "quantize_x", ((cols // 32 + 7) // 8, T), (256,),
           [ptr(x, 4 * x_off), i32(ldx), i32(cols), ptr(xq), i32(act_q8.row_bytes(cols))])


def gemv_q8(p: DevicePart, xq, T: int, y, y_off: int, ldy: int, shape=None) -> None:
    """y[t, y_off + r] = part[r] . xq[t] for t < T, xq from quantize_x."""
    shape = shape or GEMV_Q8_SHAPE[p.type_id, p.rows >= MANY_ROWS]
    rows_per_block = WARPS // shape[2] * shape[0]
    grid = ((p.rows + rows_per_block - 1) // rows_per_block, T)
    launch("matmul_q8", sources.gemv_q8_name(p.type_id, shape), grid, (32 * WARPS,),
           _planes_args(p) + [i32(p.rows), i32(p.cols), ptr(xq), i32(act_q8.row_bytes(p.cols)), ptr(y, 4 * y_off),
                              i32(ldy)])


def dequantize_f16(p: DevicePart, out) -> None:
    n = p.rows * (p.cols // 32)
    launch("matmul", sources.dequant_name(p.type_id), ((n + 255) // 256,), (256,),
           _planes_args(p) + [i32(p.rows), i32(p.cols), ptr(out)])


def gemm(p: DevicePart, s: Scratch, T: int, y, y_off: int, ldy: int) -> None:
    """y[t, y_off + r] = part[r] . x16[t] (x16 filled by to_f16), F32 out."""
    dequantize_f16(p, s.w16)
    # column-major view: Y^T (rows x T) = W (rows x cols, given as its transpose) . X^T
    cublas.gemmEx(cp.cuda.device.get_cublas_handle(), cublas.CUBLAS_OP_T, cublas.CUBLAS_OP_N,
                  p.rows, T, p.cols, s.alpha.ctypes.data, s.w16.data.ptr, CUDA_R_16F, p.cols,
                  s.x16.data.ptr, CUDA_R_16F, p.cols, s.beta.ctypes.data, y.data.ptr + 4 * y_off, CUDA_R_32F,
                  ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)


def linear(w: DeviceMatrix, x, x_off: int, ldx: int, T: int, y, y_off: int, ldy: int, s: Scratch) -> None:
    """y[t, y_off:y_off+w.rows] = W . x[t, x_off:x_off+w.cols] for t < T, device arrays."""
    if T <= ROW_EXACT_MAX_T:
        if any(p.type_id in sources.Q8_DECODERS for p in w.parts):
            quantize_x(x, x_off, ldx, T, w.cols, s.xq)
        r = 0
        for p in w.parts:
            if p.type_id in sources.Q8_DECODERS:
                gemv_q8(p, s.xq, T, y, y_off + r, ldy)
            else:
                gemv(p, x, x_off, ldx, T, y, y_off + r, ldy)
            r += p.rows
        return
    launch("matmul", "to_f16_rows", (T,), (256,), [ptr(x, 4 * x_off), i32(ldx), i32(w.cols), ptr(s.x16), ptr(s.x_scale)])
    r = 0
    for p in w.parts:
        gemm(p, s, T, y, y_off + r, ldy)
        r += p.rows
    n = T * w.rows
    launch("matmul", "scale_rows", ((n + 255) // 256,), (256,),
           [ptr(y, 4 * y_off), i32(ldy), i32(T), i32(w.rows), ptr(s.x_scale)])



assert {t for t, _ in GEMV_SHAPE} == set(PLANES)
