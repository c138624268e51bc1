"""File plumbing for the library: hashing, fingerprints, and putting files
into the library directory without ever leaving a half-written model there."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterable

from .. import locations
from ..errors import ChordError

CHUNK = 1 << 20


def downloads_dir() -> Path:
    """Where partial downloads and half-assembled files wait (inside the
    library, so the final rename stays on one file system)."""
    d = locations.models_dir() / "downloads"
    d.mkdir(parents=True, exist_ok=True)
    return d


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(paths: Iterable[str | os.PathLike]) -> list[list[int]]:
    """[size, mtime_ns] per file: if it is unchanged, the file is assumed unchanged."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([st.st_size, st.st_mtime_ns])
    return out


def is_inside_library(path: str | os.PathLike) -> bool:
    lib = locations.models_dir().resolve()
    try:
        Path(path).resolve().relative_to(lib)
    except ValueError:
        return False
    return True


def free_path(directory: Path, filename: str) -> Path:
    """``directory/filename``, or ``stem-2.gguf`` etc. if that is taken."""
    candidate = directory / filename
    stem, dot, ext = filename.rpartition(".")
    if not dot:
        stem, ext = filename, ""
    n = 2
    while candidate.exists():
        candidate = directory / (f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}")
        n += 1
    return candidate


def disk_full_error(err: OSError, what: str, directory: Path,
                    advice: str = "free some space and try again") -> ChordError | None:
    if err.errno != errno.ENOSPC:
        return None
    try:
        free = shutil.disk_usage(directory).free
        room = f" ({free / 1e6:.0f} MB free)"
    except OSError:
        room = ""
    return ChordError(f"disk full while {what} in {directory}{room}; {advice}")


def copy_with_hash(src: Path, dest: Path) -> str:
    """Copy ``src`` to ``dest`` via a temp file in the downloads dir, hashing
    on the way; ``dest`` appears only when the copy is complete."""
    tmp = downloads_dir() / (dest.name + ".copying")
    digest = hashlib.sha256()
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while block := fin.read(CHUNK):
                digest.update(block)
                fout.write(block)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dest)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        full = disk_full_error(err, f"copying {src.name}", dest.parent)
        if full:
            raise full from None
        raise ChordError(f"cannot copy {src} to {dest}: {err.strerror or err}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def move_file(src: Path, dest: Path) -> None:
    """Rename when on one file system; otherwise copy fully, then delete ``src``."""
    try:
        os.rename(src, dest)
        return
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise ChordError(f"cannot move {src} to {dest}: {err.strerror or err}") from None
    copy_with_hash(src, dest)
    src.unlink()
