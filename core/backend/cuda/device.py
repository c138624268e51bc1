"""CuPy at the edge: the kernels compiled by NVRTC (once per process;
CuPy caches the binaries on disk), launch helpers taking plain integers
for pointers, and the few runtime calls the backend makes.

Only this package imports CuPy, and only when the cuda backend is chosen.
"""

from __future__ import annotations

from functools import lru_cache

import cupy as cp
import numpy as np

from . import sources

NULL = np.uint64(0)


@lru_cache(maxsize=None)
def module(name: str) -> "cp.RawModule":
    src, exprs = sources.modules()[name]
    return cp.RawModule(code=src, options=sources.NVRTC_OPTIONS, name_expressions=exprs)


@lru_cache(maxsize=None)
def kernel(module_name: str, name: str) -> "cp.RawKernel":
    return module(module_name).get_function(name)


def compile_all() -> None:
    """Every kernel of every module, compiled and loaded now."""
    for name, (_src, exprs) in sources.modules().items():
        for e in list(exprs) + list(sources.PLAIN_KERNELS[name]):
            kernel(name, e)


def i32(v) -> np.int32:
    return np.int32(v)


def f32(v) -> np.float32:
    return np.float32(v)


def ptr(a, byte_offset: int = 0) -> int:
    """A device array's address (+ offset), or NULL for None."""
    if a is None:
        return NULL
    return np.uint64(a.data.ptr + byte_offset)


def launch(module_name: str, name: str, grid, block, args, shared_mem: int = 0) -> None:
    kernel(module_name, name)(tuple(grid), tuple(block), tuple(args), shared_mem=shared_mem)


def device_name() -> str:
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def free_bytes() -> int:
    free, _total = cp.cuda.runtime.memGetInfo()
    return int(free)


def pinned(shape, dtype) -> np.ndarray:
    """A page-locked host array: copies from and to it run asynchronously."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    mem = cp.cuda.alloc_pinned_memory(max(n, 1))
    return np.frombuffer(mem, dtype, int(np.prod(shape))).reshape(shape)


def copy_in(dst, src: np.ndarray, stream, nbytes: int | None = None) -> None:
    """Host (pinned) -> device, asynchronous on ``stream``."""
    n = src.nbytes if nbytes is None else nbytes
    cp.cuda.runtime.memcpyAsync(dst.data.ptr, src.ctypes.data, n, cp.cuda.runtime.memcpyHostToDevice, stream.ptr)


def copy_out(dst: np.ndarray, src, stream, nbytes: int | None = None) -> None:
    """Device -> host (pinned), asynchronous on ``stream``."""
    n = dst.nbytes if nbytes is None else nbytes
    cp.cuda.runtime.memcpyAsync(dst.ctypes.data, src.data.ptr, n, cp.cuda.runtime.memcpyDeviceToHost, stream.ptr)
