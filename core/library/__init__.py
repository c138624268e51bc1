"""The model library (issue 4): GGUF models by name, under ``locations.models_dir()``.

``resolve_model`` turns a CLI/TUI MODEL argument (a library name, a path,
or nothing for the default model) into the GGUF path to open; for a split
model that is the first shard, and ``shard_paths`` lists them all.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ChordError
from .discovery import discover
from .manage import (
    DuplicateModelError,
    add_model,
    add_remote,
    default_model_name,
    find_entry,
    get_entry,
    get_remote,
    list_entries,
    list_remotes,
    mark_used,
    name_for_path,
    registry,
    remove_model,
    remove_remote,
    set_default,
)
from .remote import find_remote
from .pull import PullCancelled, pull, resolve_source
from .registry import LibraryEntry
from .remote import RemoteEntry, describe_remote
from ..gguf_shards import shard_paths
from .validate import ModelSummary, validate_gguf

__all__ = [
    "DuplicateModelError", "LibraryEntry", "ModelSummary", "PullCancelled", "RemoteEntry", "add_model",
    "add_remote", "default_model_name", "describe_remote", "discover",
    "get_entry", "get_remote", "list_entries", "list_remotes", "mark_used", "name_for_path", "pull",
    "remove_model", "remove_remote", "resolve_model", "resolve_source", "set_default", "shard_paths",
    "validate_gguf",
]


def resolve_model(spec: str | None = None) -> Path:
    """The GGUF file for a library name or a path; with no spec, the default
    model (see ``default_model_name``). Raises ChordError if there is none."""
    if spec is None or not str(spec).strip():
        name = default_model_name()
        if name is None:
            raise ChordError("no models yet: add one with `chord-chat models add FILE.gguf` "
                             "or `chord-chat models pull URL`")
        return _entry_path(get_entry(name))
    spec = str(spec)
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    state = registry().load()
    entry = find_entry(state, spec)
    if entry is None:
        discover()  # a packaged model installed since the last look
        state = registry().load()
        entry = find_entry(state, spec)
    if entry is None and (remote := find_remote(state, spec)) is not None:
        raise ChordError(f"{remote.name!r} is a remote model at {remote.url}: `chord-chat run` and `chat` use it; "
                         "this needs a local GGUF file")
    if entry is None:
        if path.is_dir():
            raise ChordError(f"{path}: is a directory, not a GGUF file")
        known = ", ".join(sorted(state.models)) or "none"
        raise ChordError(f"model {spec!r}: no such file and no library model of that name "
                         f"(library models: {known})")
    return _entry_path(entry)


def _entry_path(entry: LibraryEntry) -> Path:
    missing = [p for p in entry.shards if not Path(p).is_file()]
    if missing:
        raise ChordError(f"model {entry.name!r}: file {missing[0]} is missing; "
                         f"re-add it or run `chord-chat models rm {entry.name}`")
    return Path(entry.path)
