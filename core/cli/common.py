"""Helpers shared by the engine's CLI verbs."""

from __future__ import annotations

import sys
from typing import Any

from ..backend import BACKEND_NAMES, default_threads
from ..errors import ChordError
from ..kv_cache import KV_TYPES
from ..library import resolve_model
from ..model import Model

def add_model_arg(p) -> None:
    p.add_argument("model", help="library name or path to a .gguf file")


def add_engine_args(p) -> None:
    """--backend, --threads, --kv-type: how the engine runs a model. Checked
    by ``engine_options`` (not argparse ``choices``) so a bad value is one line."""
    p.add_argument("--backend", default="auto",
                   help=f"{', '.join(BACKEND_NAMES)} (default auto: the compiled kernels when they are "
                        "installed, else numpy)")
    p.add_argument("--threads", type=int, default=None,
                   help=f"threads for the kernels (default: the cores this process may use, here {default_threads()})")
    p.add_argument("--kv-type", default="f32", help=f"KV cache element type: {' or '.join(KV_TYPES)} (default f32)")
    p.add_argument("--gpu-layers", type=int, default=None, metavar="N",
                   help="--backend cuda: the first N layers on the GPU, the rest on the CPU (default all)")


def engine_options(args) -> dict[str, Any]:
    """Model.load's keywords from the options, each checked with a one-line error."""
    if args.backend not in BACKEND_NAMES:
        raise ChordError(f"--backend {args.backend!r} is not one of {', '.join(BACKEND_NAMES)}")
    if args.threads is not None and args.threads < 1:
        raise ChordError(f"--threads must be at least 1, got {args.threads}")
    if args.kv_type not in KV_TYPES:
        raise ChordError(f"--kv-type {args.kv_type!r} is not one of {', '.join(KV_TYPES)}")
    options = {"backend": args.backend, "threads": args.threads, "kv_type": args.kv_type}
    gpu_layers = getattr(args, "gpu_layers", None)
    if gpu_layers is not None:
        if gpu_layers < 0:
            raise ChordError(f"--gpu-layers must be at least 0, got {gpu_layers}")
        if args.backend != "cuda":
            raise ChordError("--gpu-layers is for --backend cuda")
        options["gpu_layers"] = gpu_layers
    return options


def load_model(spec: str, args=None) -> Model:
    """The model ``spec`` names, run as ``args``' engine options say (defaults without)."""
    model = Model.load(resolve_model(spec), **(engine_options(args) if args is not None else {}))
    if model.backend_notice:  # the compiled kernels are missing: say so once, with the cure
        print(f"chord-chat: {model.backend_notice}", file=sys.stderr)
    return model
