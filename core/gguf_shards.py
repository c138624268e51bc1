"""gguf-split shard names (below both the file reader and the library): ``NAME-00001-of-00003.gguf`` and its siblings are one model.

llama.cpp's ``gguf-split`` names shards this way and stores ``split.no``
(0-based) and ``split.count`` in every shard; the first shard carries the
model metadata, every shard carries some of the tensors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from .errors import ChordError

SHARD_NAME = re.compile(r"^(?P<base>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


def parse_shard_name(path: str | os.PathLike) -> tuple[str, int, int] | None:
    """(base name, 1-based shard number, shard count), or None for a whole file."""
    m = SHARD_NAME.match(Path(path).name)
    if not m:
        return None
    return m["base"], int(m["no"]), int(m["count"])


def model_name_for(path: str | os.PathLike) -> str:
    """The library name a file gets by default: its file name without ``.gguf``
    (and without the shard suffix for a split model)."""
    parsed = parse_shard_name(path)
    if parsed:
        return parsed[0]
    name = Path(path).name
    return name[:-5] if name.lower().endswith(".gguf") else name


def sibling_shards(path: str | os.PathLike) -> list[Path]:
    """Every shard of the split model ``path`` belongs to, in order; ``[path]``
    for a whole file. Raises ChordError naming the first missing shard."""
    path = Path(path)
    parsed = parse_shard_name(path)
    if parsed is None:
        return [path]
    base, _, count = parsed
    if count < 1:
        raise ChordError(f"{path}: shard name says the model has {count} shards")
    paths = [path.with_name(f"{base}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    for p in paths:
        if not p.is_file():
            raise ChordError(f"{path}: split model is incomplete, shard {p.name} is missing")
    return paths


def shard_paths(entry_or_path: "object | str | os.PathLike") -> list[Path]:
    """The files the engine must read for a model, first shard first.

    Takes a library entry (anything with ``.shards`` and ``.name``) or a path to any one shard (or to a whole file).
    """
    shards = getattr(entry_or_path, "shards", None)
    if shards is not None:
        paths = [Path(p) for p in shards]
        for p in paths:
            if not p.is_file():
                raise ChordError(f"model {entry_or_path.name!r}: file {p} is missing")  # type: ignore[union-attr]
        return paths
    return sibling_shards(entry_or_path)  # type: ignore[arg-type]
