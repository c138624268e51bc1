"""The compiled parts: four C extensions, built by the package's own build.

Everything else is declared in pyproject.toml. The extensions are
``optional``: where no C compiler is available the install still succeeds
and chord_core falls back to the ``numpy`` backend, saying so once.

Never ``-march=native``: a wheel built on one machine must run on any
x86-64 CPU. Each ISA's kernels carry their own ``target`` attribute and are
picked at import from the CPU's flags (core/backend/csrc/kernels/dispatch.c).
"""

from glob import glob
import sys

from setuptools import Extension, setup

_FLAGS = ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-pthread"] if sys.platform != "win32" else ["/O2"]
_LINK = ["-pthread"] if sys.platform != "win32" else []


def _extension(name: str, folder: str, flags: tuple[str, ...] = ()) -> Extension:
    return Extension(
        f"chord_core.{name}",
        sources=sorted(glob(f"{folder}/*.c")),
        include_dirs=[folder, "core/backend/csrc"],
        extra_compile_args=_FLAGS + list(flags),
        extra_link_args=_LINK,
        optional=True,
    )


# The kernels promise each row the same float operations whatever the number
# of tokens (csrc/kernels/kernels.h): the compiler must not fuse a multiply
# and an add on its own, differently in different loops.
_NO_CONTRACT = ("-ffp-contract=off",) if sys.platform != "win32" else ("/fp:precise",)

setup(ext_modules=[
    _extension("_kernels", "core/backend/csrc/kernels", _NO_CONTRACT),
    _extension("_attention", "core/backend/csrc/attention"),
    # the GGUF reader's string arrays (a vocabulary), not a backend's: the
    # reader falls back to its Python loop without it
    _extension("_gguf_strings", "core/csrc"),
    # the sampler's pass over each token's logits; without it the sampler
    # runs its NumPy reference (core/logit_scan.py)
    _extension("_sampling", "core/csrc/sampling", _NO_CONTRACT),
])
