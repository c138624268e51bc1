"""``pull``: download a GGUF over HTTP(S) into the library, resumably.

The bytes go to ``downloads/<name>.gguf.part`` (with a small ``.json``
note of the URL and ETag). A later pull of the same source asks for the
rest with a Range request; a server that ignores it (200) means starting
over. The file enters the library only once complete, matching any
sha256 the server announced, and valid as a model.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from .. import locations
from ..errors import ChordError
from ..model_facts import format_size
from .files import disk_full_error, downloads_dir, free_path
from .manage import check_name, entry_from_summary, record_entry, refuse_duplicate, registry
from .registry import LibraryEntry
from ..gguf_shards import model_name_for
from .validate import validate_gguf

HF_BASE_ENV = "CHORD_HF_BASE_URL"
DEFAULT_HF_BASE = "https://huggingface.co"
CHUNK = 1 << 20
TIMEOUT = 30.0
USER_AGENT = "chord-chat/0.1"
Progress = Callable[[int, "int | None"], None]
Notify = Callable[[str], None]


class PullCancelled(ChordError):
    """The caller's cancel event fired; the partial file is kept for a resume."""


class _Dropped(Exception):
    pass


def resolve_source(source: str) -> tuple[str, str]:
    """(URL, file name) for an http(s) URL or ``hf:OWNER/REPO/PATH/FILE.gguf``."""
    if source.startswith("hf:"):
        parts = [p for p in source[3:].split("/") if p]
        if len(parts) < 3:
            raise ChordError(f"{source!r}: hf sources look like hf:OWNER/REPO/FILE.gguf")
        owner, repo, *path = parts
        base = (os.environ.get(HF_BASE_ENV) or DEFAULT_HF_BASE).rstrip("/")
        quoted = "/".join(urllib.parse.quote(p) for p in path)
        return f"{base}/{owner}/{repo}/resolve/main/{quoted}", _safe_filename(path[-1])
    try:
        parsed = urllib.parse.urlparse(source)
    except ValueError as err:  # e.g. an unclosed IPv6 bracket
        raise ChordError(f"{source!r} is not a valid URL ({err})") from None
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ChordError(f"{source!r} is not an http(s) URL or hf:OWNER/REPO/FILE.gguf "
                         "(for a file on disk use `chord-chat models add`)")
    filename = urllib.parse.unquote(parsed.path.rstrip("/").rpartition("/")[2])
    return source, _safe_filename(filename)


def _safe_filename(name: str) -> str:
    """The last path component only: an escaped separator (``..%2F..%2Fx``)
    must not carry the download outside the library."""
    name = name.replace("\\", "/").rpartition("/")[2].strip()
    if name in ("", ".", "..") or "\x00" in name:
        return "model.gguf"
    return name


def announced_sha256(header_sets: list) -> str | None:
    """The sha256 the server vouches for: the hub puts the LFS object's hash
    in X-Linked-Etag (on the redirect) or in ETag, possibly quoted or weak."""
    for key in ("X-Linked-Etag", "ETag"):
        for headers in header_sets:
            value = headers.get(key) if headers is not None else None
            if not value:
                continue
            value = value.strip()
            if value.startswith("W/"):
                value = value[2:]
            value = value.strip('"').lower()
            if re.fullmatch(r"[0-9a-f]{64}", value):
                return value
    return None


class _RecordingRedirects(urllib.request.HTTPRedirectHandler):
    """Keeps the headers of each redirect: the hub's checksum is only there."""

    def __init__(self, seen: list):
        self.seen = seen

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.seen.append(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def pull(source: str, name: str | None = None, progress: Progress | None = None,
         cancel: threading.Event | None = None, notify: Notify | None = None) -> LibraryEntry:
    """Download ``source`` into the library and register it.

    ``progress(downloaded, total)`` is called as bytes arrive (total is None
    if the server does not say); setting ``cancel`` stops the download,
    keeps the partial file and raises PullCancelled. ``notify(message)``
    hears what the user should know mid-way (a resume that starts over).
    A file already in the library (same sha256) raises DuplicateModelError
    naming that entry: before the download when the server announces the
    hash, else after it, discarding the copy.
    """
    url, filename = resolve_source(source)
    explicit = name is not None
    name = check_name(name) if name is not None else model_name_for(filename)
    if not filename.lower().endswith(".gguf"):
        filename = f"{name}.gguf"
    state = registry().load()
    for entry in state.models.values():
        if entry.source in (source, url) and entry.files_present():
            raise ChordError(f"{source} is already in the library as {entry.name!r}")
    if explicit and name in state.models:
        raise ChordError(f"a model named {name!r} already exists; pick another with --name")

    part = downloads_dir() / f"{name}.gguf.part"
    note = part.with_name(part.name + ".json")
    def refuse_known(sha256: str) -> None:
        refuse_duplicate(registry().load(), source, sha256, done="nothing was downloaded")

    digest = _Download(source, url, part, note, progress, cancel, notify, refuse_known).run()
    try:
        summary = validate_gguf(part)
    except ChordError as err:
        _discard(part, note)
        raise ChordError(f"{filename} from {url} is not a usable model: {err}") from None
    dest = free_path(locations.models_dir(), filename)
    os.replace(part, dest)
    note.unlink(missing_ok=True)
    entry = entry_from_summary(summary, name, [dest], [digest], source=source)
    try:
        return record_entry(entry, explicit)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def _discard(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


class _Download:
    def __init__(self, source: str, url: str, part: Path, note: Path,
                 progress: Progress | None, cancel: threading.Event | None, notify: Notify | None = None,
                 refuse_known: Callable[[str], None] | None = None):
        self.source, self.url, self.part, self.note = source, url, part, note
        self.progress = progress or (lambda done, total: None)
        self.cancel = cancel
        self.notify = notify or (lambda message: None)
        # raises when the announced sha256 is a file the library already has
        self.refuse_known = refuse_known or (lambda sha256: None)

    def _load_note(self) -> dict:
        try:
            data = json.loads(self.note.read_text())
            return data if data.get("url") == self.url else {}
        except (OSError, ValueError, AttributeError):
            return {}

    def run(self) -> str:
        """Fetch the rest of the file; return its sha256 after checking it."""
        note = self._load_note()
        if not note:
            _discard(self.part)  # a partial from some other URL is no use
        have = self.part.stat().st_size if self.part.exists() else 0
        for _attempt in range(2):
            result = self._fetch(have, note)
            if result is not None:
                return result
            if have:
                self.notify(f"{self.source}: the server cannot continue the partial download "
                            f"({format_size(have)}); starting over")
            _discard(self.part, self.note)  # the server cannot continue this partial
            have, note = 0, {}
        raise ChordError(f"{self.source}: the server keeps refusing the download")

    def _open(self, have: int, note: dict):
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
            if note.get("etag"):
                headers["If-Range"] = note["etag"]  # changed upstream: the server sends it whole
        redirects: list = []
        opener = urllib.request.build_opener(_RecordingRedirects(redirects))
        try:
            resp = opener.open(urllib.request.Request(self.url, headers=headers), timeout=TIMEOUT)
        except urllib.error.HTTPError as err:
            if err.code == 416 and have:
                # nothing left to send: either our partial is already whole or it is bogus
                _, total = _content_range(err.headers.get("Content-Range", "") if err.headers else "")
                return ("complete" if total == have else None), redirects
            raise self._http_error(err.code, err.reason) from None
        except urllib.error.URLError as err:
            host = urllib.parse.urlparse(self.url).netloc
            raise ChordError(f"{self.source}: cannot reach {host}: {err.reason}") from None
        except (OSError, http.client.HTTPException) as err:
            raise ChordError(f"{self.source}: connection failed: {err}") from None
        return resp, redirects

    def _http_error(self, code: int, reason: str) -> ChordError:
        if code == 404:
            return ChordError(f"{self.source}: not found (HTTP 404 from {self.url})")
        if code in (401, 403):
            return ChordError(f"{self.source}: access denied (HTTP {code}); the file may be private or "
                              "gated: download it in a browser and use `chord-chat models add`")
        return ChordError(f"{self.source}: download failed (HTTP {code} {reason})")

    def _fetch(self, have: int, note: dict) -> str | None:
        resp, redirects = self._open(have, note)
        if resp is None:
            return None
        if resp == "complete":
            return self._check(_hash_prefix(self.part, have).hexdigest(), note.get("sha256"))
        with resp:
            total = _content_length(resp)
            if resp.status == 206:
                start, total = _content_range(resp.headers.get("Content-Range", ""))
                if start != have:
                    return None
            elif have:
                self._starting_over(have, note, resp.headers.get("ETag"))
                have = 0
            expected = announced_sha256(redirects + [resp.headers]) or note.get("sha256")
            if expected:
                try:
                    self.refuse_known(expected)
                except ChordError:
                    _discard(self.part, self.note)
                    raise
            self.note.write_text(json.dumps({"url": self.url, "etag": resp.headers.get("ETag"),
                                             "total": total, "sha256": expected}))
            digest = _hash_prefix(self.part, have)
            done = self._copy_body(resp, have, total, digest)
        if total is not None and done < total:
            raise self._dropped(done, total)
        return self._check(digest.hexdigest(), expected)

    def _starting_over(self, have: int, note: dict, etag: str | None) -> None:
        """A Range request answered with the whole file: say why the bytes already here are dropped."""
        if note.get("etag") and etag and etag != note["etag"]:
            why = "the file changed on the server since the partial download"
        else:
            why = "the server does not resume downloads (it ignored the Range request)"
        self.notify(f"{self.source}: {why}; starting over, the {format_size(have)} downloaded before are discarded")

    def _check(self, actual: str, expected: str | None) -> str:
        if expected and actual != expected:
            _discard(self.part, self.note)
            raise ChordError(f"{self.source}: checksum mismatch: the server announced sha256 {expected} "
                             f"but the download hashes to {actual}; the download was discarded")
        return actual

    def _copy_body(self, resp, have: int, total: int | None, digest) -> int:
        done = have
        self.progress(done, total)
        try:
            with open(self.part, "ab" if have else "wb") as out:
                while True:
                    if self.cancel is not None and self.cancel.is_set():
                        raise PullCancelled(f"{self.source}: download cancelled at {format_size(done)}; "
                                            "the partial file is kept, run the same pull again to resume")
                    try:
                        # read1: whatever has arrived (up to CHUNK), so a slow server still
                        # moves the bar and a cancel keeps what came in
                        block = resp.read1(CHUNK) if hasattr(resp, "read1") else resp.read(CHUNK)
                    except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError):
                        raise self._dropped(done, total) from None
                    if not block:
                        return done
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    self.progress(done, total)
        except OSError as err:  # writing: the read errors became ChordErrors above
            full = disk_full_error(err, f"downloading {self.part.name}", self.part.parent,
                                   advice="free some space and run the same pull again to resume "
                                          "(the partial file is kept)")
            if full:
                raise full from None
            raise ChordError(f"cannot write {self.part}: {err.strerror or err}") from None

    def _dropped(self, done: int, total: int | None) -> ChordError:
        return ChordError(f"{self.source}: connection dropped after {format_size(done)} of "
                          f"{format_size(total)}; the partial file is kept, run the same pull again "
                          "to resume")


def _content_length(resp) -> int | None:
    value = resp.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _content_range(value: str) -> tuple[int, int | None]:
    """(first byte, total) from "bytes 100-199/200", or (-1, 200) from a 416's "bytes */200"."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value)
    if not m:
        return -1, None
    start = int(m[1]) if m[1] is not None else -1
    return start, (int(m[2]) if m[2] != "*" else None)


def _hash_prefix(path: Path, n: int):
    import hashlib

    digest = hashlib.sha256()
    if n:
        with open(path, "rb") as fh:
            remaining = n
            while remaining:
                block = fh.read(min(CHUNK, remaining))
                if not block:
                    break
                digest.update(block)
                remaining -= len(block)
    return digest
