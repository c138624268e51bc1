"""The library index, ``library.json`` in the data dir, and its entries.

Crash safety: the index is only ever replaced whole (temp file, fsync,
``os.replace``), so a reader sees the old or the new version, never half.
Concurrency: every change is a read-modify-write under an exclusive
``flock`` on ``library.json.lock``, so two processes adding models at once
both land. Slow work (hashing, copying, downloading) happens before taking
the lock; only the small JSON update runs under it.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .. import locations
from ..atomic_file import atomic_write_text
from ..errors import ChordError
from .remote import RemoteEntry

try:
    import fcntl
except ImportError:  # Windows: no flock; a single user rarely races themselves there
    fcntl = None  # type: ignore[assignment]

INDEX_NAME = "library.json"
FORMAT_VERSION = 1


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class LibraryEntry:
    name: str
    path: str  # the file to open (the first shard of a split model)
    size: int
    sha256: str  # of ``path``; every shard's hash is in shard_sha256
    architecture: str
    parameter_count: int
    quant_type: str
    context_length: int | None
    chat_template_source: str  # "gguf" or "fallback"
    source: str  # URL, original file path, or "package:<distribution>"
    added: str
    shards: list[str] = field(default_factory=list)
    shard_sha256: list[str] = field(default_factory=list)
    # [size, mtime_ns] per shard when hashed, so unchanged files are not re-hashed
    fingerprint: list[list[int]] = field(default_factory=list)
    last_used: str | None = None

    def __post_init__(self) -> None:
        # a hand-edited or damaged index: wrong types are refused here, with
        # the field named, rather than failing later somewhere far away
        for name, kind in (("name", str), ("path", str), ("size", int), ("architecture", str),
                           ("parameter_count", int), ("quant_type", str), ("source", str)):
            value = getattr(self, name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise TypeError(f"model {self.name!r}: field {name!r} is {value!r}")
        if not self.shards:
            self.shards = [self.path]
        if not isinstance(self.shards, list) or not all(isinstance(p, str) for p in self.shards):
            raise TypeError(f"model {self.name!r}: field 'shards' is {self.shards!r}")

    @property
    def has_chat_template(self) -> bool:
        """False for a base model (completion only): its GGUF has no chat template."""
        return self.chat_template_source == "gguf"

    @property
    def is_split(self) -> bool:
        return len(self.shards) > 1

    def files_present(self) -> bool:
        return all(Path(p).is_file() for p in self.shards)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LibraryEntry":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class LibraryState:
    models: dict[str, LibraryEntry] = field(default_factory=dict)
    remotes: dict[str, RemoteEntry] = field(default_factory=dict)  # models on a server (remote.py)
    default: str | None = None
    last_used: str | None = None
    # bookkeeping of package discovery: what was seen, removed by the user, refused
    discovery: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "format": FORMAT_VERSION,
            "default": self.default,
            "last_used": self.last_used,
            "models": {name: e.to_dict() for name, e in sorted(self.models.items())},
            "discovery": self.discovery,
        }
        if self.remotes:  # absent until the first remote entry: an index without one reads as before
            data["remotes"] = {name: e.to_dict() for name, e in sorted(self.remotes.items())}
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str, origin: Path) -> "LibraryState":
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError("top level is not an object")
            models = {name: LibraryEntry.from_dict(e) for name, e in raw.get("models", {}).items()}
            remotes = {name: RemoteEntry.from_dict(e) for name, e in (raw.get("remotes") or {}).items()}
            for key, kinds in (("default", (str, type(None))), ("last_used", (str, type(None))),
                               ("discovery", (dict, type(None)))):
                if not isinstance(raw.get(key), kinds):
                    raise TypeError(f"{key!r} is {raw.get(key)!r}")
        except (ValueError, TypeError, AttributeError) as err:
            raise ChordError(
                f"{origin}: the model library index is damaged ({err}); move it aside to start a new one"
            ) from None
        return cls(models=models, remotes=remotes, default=raw.get("default"), last_used=raw.get("last_used"),
                   discovery=raw.get("discovery") or {})

    def name_taken(self, name: str) -> bool:
        """Local and remote models share one namespace: a name means one model."""
        return name in self.models or name in self.remotes

    def unique_name(self, wanted: str) -> str:
        """``wanted``, or ``wanted-2``, ``wanted-3``... whichever is free."""
        if not self.name_taken(wanted):
            return wanted
        n = 2
        while self.name_taken(f"{wanted}-{n}"):
            n += 1
        return f"{wanted}-{n}"

    def entry_with_sha256(self, sha256: str) -> LibraryEntry | None:
        """The entry whose file has these contents (and is still there), if any."""
        for entry in self.models.values():
            if entry.sha256 == sha256 and entry.files_present():
                return entry
        return None

    def entry_for_path(self, path: str | os.PathLike) -> LibraryEntry | None:
        target = os.path.abspath(path)
        for entry in self.models.values():
            if os.path.abspath(entry.path) == target:
                return entry
        return None


class Registry:
    """``library.json`` on disk. Read with ``load()``, change with ``transaction()``."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else locations.data_dir() / INDEX_NAME

    def load(self) -> LibraryState:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return LibraryState()
        except UnicodeDecodeError:
            raise ChordError(f"{self.path}: the model library index is damaged (not UTF-8 text); "
                             "move it aside to start a new one") from None
        except OSError as err:
            raise ChordError(f"{self.path}: cannot read the model library index ({err.strerror or err})") from None
        return LibraryState.from_json(text, self.path)

    @contextmanager
    def transaction(self) -> Iterator[LibraryState]:
        """Yield the current state under the lock; write it back if the block
        finishes without an exception."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a+")
        except OSError as err:
            raise ChordError(f"{self.path.parent}: cannot write the model library here ({err.strerror or err}); "
                             "check CHORD_HOME") from None
        with lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                state = self.load()
                before = state.to_json()
                yield state
                after = state.to_json()
                if after != before:
                    try:
                        atomic_write_text(self.path, after)
                    except OSError as err:
                        raise ChordError(f"{self.path}: cannot save the model library index "
                                         f"({err.strerror or err})") from None
            finally:
                if fcntl is not None:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
