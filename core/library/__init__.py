"""The model library (see issue 4). ``resolve_model`` turns a CLI/TUI MODEL
argument (a library name or a path) into a GGUF path."""

from __future__ import annotations

from pathlib import Path

from ..errors import ChordError


def resolve_model(spec: str) -> Path:
    p = Path(spec).expanduser()
    if p.exists():
        return p
    raise ChordError(f"model {spec!r}: no such file and no library model of that name")
