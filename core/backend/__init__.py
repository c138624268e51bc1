"""Backends: where the forward pass's heavy operations run.

``forward()`` (forward.py) is written once against the small interface in
``base.py``. Two implementations:

- ``numpy``: every weight dequantized to F32 at load, products through
  NumPy's BLAS. The reference the tests compare against, and the fallback
  where the compiled kernels are missing.
- ``cpu``: weights stay in their GGUF blocks (read through the mmap) and
  the products run in the C kernels of ``chord_core._kernels`` /
  ``chord_core._attention``.

``auto`` (the default) is ``cpu`` when its kernels import, else ``numpy``
with a notice saying why and how to get the fast one.
"""

from __future__ import annotations

import os

from ..errors import ChordError
from .base import Backend

BACKEND_NAMES = ("auto", "cpu", "numpy")

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


def make_backend(name: str = "auto", threads: int | None = None) -> tuple[Backend, str | None]:
    """The backend called ``name`` and, for ``auto`` falling back to numpy,
    a one-line notice for the user (else None)."""
    if name not in BACKEND_NAMES:
        raise ChordError(f"unknown backend {name!r} (choose from {', '.join(BACKEND_NAMES)})")
    threads = check_threads(threads)
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
    return NumpyBackend(threads), f"compiled kernels unavailable ({reason}): {FALLBACK_ADVICE}"
