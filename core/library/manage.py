"""Library operations: add, remove, default, last used, look up.

Every change validates and does slow file work first, then records the
result in one short registry transaction, so a refused or failed add
leaves the library exactly as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import locations
from ..errors import ChordError
from .files import copy_with_hash, fingerprint, free_path, is_inside_library, move_file, sha256_file
from .registry import LibraryEntry, LibraryState, Registry, now_iso
from .remote import RemoteEntry, find_remote, new_remote
from ..gguf_shards import model_name_for, parse_shard_name
from .validate import ModelSummary, validate_gguf

ADD_MODES = ("link", "copy", "move")


class DuplicateModelError(ChordError):
    """The file is already in the library under another name; ``existing`` is
    that entry, for a caller that offers it instead."""

    def __init__(self, origin: str, sha256: str, existing: LibraryEntry, done: str = "nothing was added"):
        super().__init__(f"{origin}: the same file (sha256 {sha256[:12]}…) is already in the library as "
                         f"{existing.name!r}; use that one ({done})")
        self.existing = existing


def refuse_duplicate(state: LibraryState, origin: str, sha256: str, done: str = "nothing was added") -> None:
    existing = state.entry_with_sha256(sha256)
    if existing is not None:
        raise DuplicateModelError(origin, sha256, existing, done)


def registry() -> Registry:
    # built per call: the data dir follows CHORD_HOME, which tests change
    return Registry()


MAX_NAME = 120  # a name is shown in tables and in one-line errors


def check_name(name: str) -> str:
    name = name.strip()
    if (not name or any(sep in name for sep in ("/", "\\")) or name in (".", "..")
            or any(not ch.isprintable() for ch in name) or len(name) > MAX_NAME):
        shown = name if len(name) <= MAX_NAME else name[:40] + "…"
        raise ChordError(f"{shown!r} is not a usable model name "
                         f"(no slashes or control characters, 1 to {MAX_NAME} characters)")
    return name


def list_entries() -> list[LibraryEntry]:
    return sorted(registry().load().models.values(), key=lambda e: e.name.lower())


def find_entry(state: LibraryState, spec: str) -> LibraryEntry | None:
    """Exact name, else the one name equal ignoring case."""
    if spec in state.models:
        return state.models[spec]
    folded = [e for n, e in state.models.items() if n.lower() == spec.lower()]
    return folded[0] if len(folded) == 1 else None


def name_for_path(path: str | os.PathLike) -> str | None:
    """The library name of the model file at ``path``, if it is in the library."""
    entry = registry().load().entry_for_path(path)
    return entry.name if entry is not None else None


def get_entry(name: str) -> LibraryEntry:
    state = registry().load()
    entry = find_entry(state, name)
    if entry is None:
        raise ChordError(f"no model named {name!r} in the library ({_known(state)})")
    return entry


def _known(state: LibraryState) -> str:
    if not state.models and not state.remotes:
        return "the library is empty"
    return "known: " + ", ".join(sorted([*state.models, *state.remotes]))


def entry_from_summary(summary: ModelSummary, name: str, files: list[Path], hashes: list[str],
                       source: str) -> LibraryEntry:
    return LibraryEntry(
        name=name,
        path=str(files[0]),
        size=summary.size,
        sha256=hashes[0],
        architecture=summary.architecture,
        parameter_count=summary.parameter_count,
        quant_type=summary.quant_type,
        context_length=summary.context_length,
        chat_template_source=summary.chat_template_source,
        source=source,
        added=now_iso(),
        shards=[str(p) for p in files],
        shard_sha256=list(hashes),
        fingerprint=fingerprint(files),
    )


def record_entry(entry: LibraryEntry, explicit_name: bool) -> LibraryEntry:
    """Insert under the lock. A taken explicit name is an error; a taken
    derived name gets a ``-2`` suffix (two processes may race for it)."""
    with registry().transaction() as state:
        existing = state.entry_for_path(entry.path)
        if existing is not None:
            raise ChordError(f"{entry.path} is already in the library as {existing.name!r}")
        refuse_duplicate(state, entry.source, entry.sha256)
        if state.name_taken(entry.name):
            if explicit_name:
                raise ChordError(f"a model named {entry.name!r} already exists; pick another with --name")
            entry.name = state.unique_name(entry.name)
        state.models[entry.name] = entry
    return entry


def add_model(path: str | os.PathLike, name: str | None = None, mode: str = "link") -> LibraryEntry:
    """Validate a GGUF (any shard of a split model) and add it.

    mode "link" registers the file where it is; "copy" and "move" put it in
    the library directory (then ``models rm`` deletes it too).
    """
    if mode not in ADD_MODES:
        raise ChordError(f"unknown add mode {mode!r} (one of {', '.join(ADD_MODES)})")
    src = Path(path).expanduser().absolute()
    summary = validate_gguf(src)
    explicit = name is not None
    name = check_name(name) if name is not None else model_name_for(src)
    state = registry().load()
    existing = state.entry_for_path(summary.shards[0])
    if existing is not None and mode == "link":
        raise ChordError(f"{summary.shards[0]} is already in the library as {existing.name!r}")
    if explicit and state.name_taken(name):
        raise ChordError(f"a model named {name!r} already exists; pick another with --name")

    sources = list(summary.shards)
    if mode == "link" or all(is_inside_library(p) for p in sources):
        files, hashes = sources, [sha256_file(p) for p in sources]
    else:
        files = _library_destinations(sources)
        if mode == "copy":
            hashes = [copy_with_hash(s, d) for s, d in zip(sources, files)]
        else:
            for s, d in zip(sources, files):
                move_file(s, d)
            hashes = [sha256_file(d) for d in files]
    entry = entry_from_summary(summary, name, files, hashes, source=str(src))
    try:
        return record_entry(entry, explicit)
    except BaseException:
        _undo_placement(mode, sources, files)
        raise


def _library_destinations(sources: list[Path]) -> list[Path]:
    lib = locations.models_dir()
    if len(sources) == 1:
        return [free_path(lib, sources[0].name)]
    # shards must keep the NAME-0000i-of-0000n pattern, so pick one free base for all
    base, _, count = parse_shard_name(sources[0])  # type: ignore[misc]
    candidate, n = base, 2
    while any((lib / f"{candidate}-{i:05d}-of-{count:05d}.gguf").exists() for i in range(1, count + 1)):
        candidate, n = f"{base}-{n}", n + 1
    return [lib / f"{candidate}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]


def _undo_placement(mode: str, sources: list[Path], files: list[Path]) -> None:
    if files == sources:
        return
    for s, d in zip(sources, files):
        if mode == "move" and d.exists() and not s.exists():
            move_file(d, s)
        elif mode == "copy":
            d.unlink(missing_ok=True)


def remove_model(name: str) -> tuple[LibraryEntry, list[Path], list[Path]]:
    """Forget a model. Its files are deleted only if they live inside the
    library directory. Returns (entry, deleted files, kept files)."""
    with registry().transaction() as state:
        entry = find_entry(state, name)
        if entry is None:
            raise ChordError(f"no model named {name!r} in the library ({_known(state)})")
        del state.models[entry.name]
        if state.default == entry.name:
            state.default = None
        if state.last_used == entry.name:
            state.last_used = None
        if entry.source.startswith("package:"):
            # otherwise the next discovery would bring it straight back
            _remember_dismissed(state, entry)
    deleted, kept = [], []
    for p in map(Path, entry.shards):
        if p.exists() and is_inside_library(p):
            p.unlink()
            deleted.append(p)
        else:
            kept.append(p)
    return entry, deleted, kept


def _remember_dismissed(state: LibraryState, entry: LibraryEntry) -> None:
    seen = state.discovery.get("seen", {})
    dismissed = state.discovery.setdefault("dismissed", [])
    for source_id, info in seen.items():
        if info.get("name") == entry.name and source_id not in dismissed:
            dismissed.append(source_id)


def set_default(name: str) -> LibraryEntry:
    with registry().transaction() as state:
        entry = find_entry(state, name)
        if entry is None and find_remote(state, name) is not None:
            raise ChordError(f"{name!r} is a remote model: the default is a local model file, opened even when "
                             "no server answers; chat with it by name (`chord-chat chat NAME`)")
        if entry is None:
            raise ChordError(f"no model named {name!r} in the library ({_known(state)})")
        if not entry.files_present():
            missing = next(p for p in entry.shards if not Path(p).is_file())
            raise ChordError(f"{entry.name}: its file {missing} is gone; remove it or add the file again")
        state.default = entry.name
    return entry


def mark_used(name: str) -> None:
    """Record that ``name`` was used; a chat model also becomes the last model
    chatted with (the TUI's next default). A base model tried once does not."""
    with registry().transaction() as state:
        entry = find_entry(state, name)
        if entry is None and (remote := find_remote(state, name)) is not None:
            remote.last_used = now_iso()
            return
        if entry is None:
            raise ChordError(f"no model named {name!r} in the library ({_known(state)})")
        entry.last_used = now_iso()
        if entry.has_chat_template:
            state.last_used = entry.name


def choose_default(state: LibraryState) -> str | None:
    """The explicit default, else the last chat model used, else the newest chat
    model, else any; models whose files are gone are passed over."""
    usable = {n: e for n, e in state.models.items() if e.files_present()}
    if state.default in usable:
        return state.default
    if state.last_used in usable and usable[state.last_used].has_chat_template:
        return state.last_used
    # newest first, so a freshly added model beats the bundled demo
    ranked = sorted(usable.values(), key=lambda e: (e.added, e.name), reverse=True)
    for entry in ranked:
        if entry.chat_template_source == "gguf":
            return entry.name
    return ranked[0].name if ranked else None


def default_model_name() -> str | None:
    """The model the TUI opens when none is named; discovers packaged models
    if the library is empty. None if there is no model at all."""
    state = registry().load()
    if not state.models:
        from .discovery import discover

        discover()
        state = registry().load()
    return choose_default(state)


# -- remote models (remote.py) ---------------------------------------------------------------
def add_remote(name: str, url: str, model: str | None = None, api_key_env: str | None = None) -> RemoteEntry:
    """Record a model served elsewhere; nothing is contacted (the server may be down now)."""
    entry = new_remote(check_name(name), url, model, api_key_env)
    with registry().transaction() as state:
        if state.name_taken(entry.name):
            raise ChordError(f"a model named {entry.name!r} already exists; pick another name")
        state.remotes[entry.name] = entry
    return entry


def get_remote(name: str) -> RemoteEntry | None:
    """The remote entry called ``name``, or None when ``name`` is no remote model."""
    return find_remote(registry().load(), name)


def list_remotes() -> list[RemoteEntry]:
    return sorted(registry().load().remotes.values(), key=lambda e: e.name.lower())


def remove_remote(name: str) -> RemoteEntry:
    """Forget a remote entry; there is no file, so nothing on disk is touched."""
    with registry().transaction() as state:
        entry = find_remote(state, name)
        if entry is None:
            raise ChordError(f"no remote model named {name!r} in the library ({_known(state)})")
        del state.remotes[entry.name]
        if state.last_used == entry.name:
            state.last_used = None
    return entry
