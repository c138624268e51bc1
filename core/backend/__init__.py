"""Backends: where the forward pass's heavy operations run.

``forward()`` (forward.py) is written once against the small interface in
``base.py``. Two implementations:

- ``numpy``: every weight dequantized to F32 at load, products through
  NumPy's BLAS. The reference the tests compare against, and the fallback
  where the compiled kernels are missing.
- ``cpu``: weights stay in their GGUF blocks (read through the mmap) and
  the products run in the C kernels of ``chord_core._kernels`` /
  ``chord_core._attention``.
- ``cuda``: weights in their GGUF blocks on an NVIDIA GPU, the whole
  forward step there (``cuda/``, through CuPy: the optional ``cuda``
  extra). Only when asked for: ``auto`` never picks it, and nothing here
  imports CuPy unless it is.

``auto`` (the default) is ``cpu`` when its kernels import, else ``numpy``
with a notice saying why and how to get the fast one.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ChordError
from .base import Backend

BACKEND_NAMES = ("auto", "cpu", "numpy", "cuda")

FALLBACK_ADVICE = ("running on the slow numpy backend; reinstall with a C compiler and the Python "
                   "headers present (pip install --force-reinstall --no-deps chord-chat) for the fast one")


def default_threads() -> int:
    """The cores this process may use (affinity masks and cgroups included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def check_threads(threads: int | None) -> int:
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ChordError(f"threads must be a whole number of at least 1, got {threads!r}")
    return threads


def kernels_unavailable_reason() -> str | None:
    """None when the compiled kernels import, else one line saying why not."""
    try:
        from . import cpu_backend  # noqa: F401  (imports both extensions)
    except ImportError as e:
        return " ".join(str(e).split()) or type(e).__name__
    return None


CUDA_INSTALL = "pip install 'chord-chat[cuda]' (CuPy for CUDA 12; for a CUDA 13 driver: pip install cupy-cuda13x)"


def cuda_unavailable_reason(cupy_module: Any = None) -> str | None:
    """None when CuPy imports and sees a GPU, else one line saying what is
    missing. ``cupy_module``: the module to ask (default: import cupy)."""
    if cupy_module is None:
        try:
            import cupy as cupy_module
        except ImportError as e:
            return f"CuPy is not installed ({' '.join(str(e).split())}); {CUDA_INSTALL}"
    try:
        n = cupy_module.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError: no driver, no device, driver too old for this CuPy
        return f"no usable CUDA GPU ({' '.join(str(e).split()) or type(e).__name__})"
    return None if n > 0 else "no CUDA GPU found"


def make_backend(name: str = "auto", threads: int | None = None,
                 gpu_layers: int | None = None) -> tuple[Backend, str | None]:
    """The backend called ``name`` and, for ``auto`` falling back to numpy,
    a one-line notice for the user (else None). ``gpu_layers``: for cuda,
    how many leading layers go on the GPU (default all)."""
    if name not in BACKEND_NAMES:
        raise ChordError(f"unknown backend {name!r} (choose from {', '.join(BACKEND_NAMES)})")
    threads = check_threads(threads)
    if name == "cuda":
        reason = cuda_unavailable_reason()
        if reason is not None:
            raise ChordError(f"the cuda backend is unavailable: {reason}")
        from .cuda.backend import CudaBackend
        return CudaBackend(threads, gpu_layers), None
    if gpu_layers is not None:
        raise ChordError("--gpu-layers is for --backend cuda")
    if name == "numpy":
        from .numpy_backend import NumpyBackend
        return NumpyBackend(threads), None
    reason = kernels_unavailable_reason()
    if reason is None:
        from .cpu_backend import CpuBackend
        return CpuBackend(threads), None
    if name == "cpu":
        raise ChordError(f"the cpu backend's compiled kernels are unavailable ({reason}); "
                         "use --backend numpy, or reinstall with a C compiler present")
    from .numpy_backend import NumpyBackend
    # a path forced by CHORD_ISA that this CPU cannot run is the user's to undo, not the build's
    advice = ("running on the slow numpy backend; unset CHORD_ISA (or name a path listed) for the fast one"
              if "CHORD_ISA" in reason else FALLBACK_ADVICE)
    return NumpyBackend(threads), f"compiled kernels unavailable ({reason}): {advice}"
