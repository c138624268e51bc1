"""``pull`` against a local HTTP server that supports Range and can misbehave."""

from __future__ import annotations

import errno
import hashlib
import http.server
import importlib
import re
import threading
from pathlib import Path

import pytest

from chord_core import locations
from chord_core.errors import ChordError
from chord_core.library import PullCancelled, list_entries, pull, resolve_source
from chord_core.library.files import downloads_dir

# the package re-exports the function under the module's name, so reach the module directly
pull_module = importlib.import_module("chord_core.library.pull")

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"
BODY = TINY.read_bytes()
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture(autouse=True)
def fresh_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("chord_core.library.discovery.installed_distributions", lambda: [])


class Behaviour:
    """What the server does; tests change it between requests."""

    def __init__(self):
        self.files: dict[str, bytes] = {"/models/tiny.gguf": BODY}
        self.redirects: dict[str, str] = {}
        self.headers: dict[str, str] = {}  # extra headers on the file response
        self.redirect_headers: dict[str, str] = {}
        self.status: int | None = None  # answer every request with this error
        self.drop_after: int | None = None  # bytes of body before hanging up (once)
        self.honour_range = True
        self.requests: list[tuple[str, dict[str, str]]] = []


class Handler(http.server.BaseHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, *args):
        pass

    def do_GET(self):
        b = self.behaviour
        b.requests.append((self.path, dict(self.headers.items())))
        if b.status:
            self.send_error(b.status)
            return
        if self.path in b.redirects:
            self.send_response(302)
            self.send_header("Location", b.redirects[self.path])
            for k, v in b.redirect_headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if m and b.honour_range:
            start = int(m[1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        for k, v in b.headers.items():
            self.send_header(k, v)
        self.end_headers()
        payload = body[start:]
        if b.drop_after is not None:
            payload, b.drop_after = payload[: b.drop_after], None
            self.wfile.write(payload)
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


@pytest.fixture
def server():
    behaviour = Behaviour()
    handler = type("BoundHandler", (Handler,), {"behaviour": behaviour})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    # a short poll interval keeps shutdown() from waiting half a second per test
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    behaviour.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield behaviour
    httpd.shutdown()
    httpd.server_close()


def library_state() -> tuple[bytes | None, list[str]]:
    index = locations.data_dir() / "library.json"
    files = sorted(p.name for p in locations.models_dir().glob("*.gguf"))
    return (index.read_bytes() if index.exists() else None), files


def test_a_full_pull_lands_in_the_library(server):
    seen = []
    entry = pull(f"{server.base}/models/tiny.gguf", progress=lambda done, total: seen.append((done, total)))
    assert entry.name == "tiny"
    assert Path(entry.path) == locations.models_dir() / "tiny.gguf"
    assert Path(entry.path).read_bytes() == BODY
    assert entry.sha256 == SHA
    assert entry.source == f"{server.base}/models/tiny.gguf"
    assert [e.name for e in list_entries()] == ["tiny"]
    assert seen[-1] == (len(BODY), len(BODY))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert list(downloads_dir().iterdir()) == []


def test_a_dropped_connection_keeps_the_partial_and_the_rerun_resumes(server):
    url = f"{server.base}/models/tiny.gguf"
    server.drop_after = 700_000
    with pytest.raises(ChordError) as info:
        pull(url)
    message = str(info.value)
    assert "dropped" in message and "resume" in message and "\n" not in message
    part = downloads_dir() / "tiny.gguf.part"
    assert part.stat().st_size == 700_000
    assert list_entries() == []

    entry = pull(url)
    path, headers = server.requests[-1]
    assert headers["Range"] == "bytes=700000-"
    assert entry.sha256 == SHA
    assert Path(entry.path).read_bytes() == BODY
    assert not part.exists()


def test_a_server_that_ignores_range_means_starting_over_and_says_so(server):
    url = f"{server.base}/models/tiny.gguf"
    server.drop_after = 500_000
    with pytest.raises(ChordError):
        pull(url)
    server.honour_range = False
    said = []
    entry = pull(url, notify=said.append)
    assert "Range" in server.requests[-1][1]
    assert Path(entry.path).read_bytes() == BODY  # not the first half twice
    assert len(said) == 1 and "does not resume" in said[0] and "starting over" in said[0]
    assert "500.0 KB" in said[0]


def test_a_file_changed_on_the_server_means_starting_over_and_says_why(server):
    url = f"{server.base}/models/tiny.gguf"
    server.headers["ETag"] = '"v1"'
    server.drop_after = 500_000
    with pytest.raises(ChordError):
        pull(url)
    server.headers["ETag"] = '"v2"'
    server.honour_range = False  # If-Range no longer matches: the whole file comes
    said = []
    pull(url, notify=said.append)
    assert len(said) == 1 and "changed on the server" in said[0]


def test_pulling_a_file_the_library_has_names_that_entry_before_downloading(server):
    from chord_core.library import DuplicateModelError, add_model

    add_model(TINY, name="mine")
    before = library_state()
    server.headers["ETag"] = f'"{SHA}"'  # announced: known before the body is read
    with pytest.raises(DuplicateModelError) as info:
        pull(f"{server.base}/models/tiny.gguf", name="again")
    assert info.value.existing.name == "mine"
    assert "already in the library as 'mine'" in str(info.value) and "nothing was downloaded" in str(info.value)
    assert library_state() == before and list(downloads_dir().iterdir()) == []


def test_pulling_a_file_the_library_has_without_an_announced_hash_discards_the_copy(server):
    from chord_core.library import DuplicateModelError, add_model

    add_model(TINY, name="mine")
    before = library_state()
    with pytest.raises(DuplicateModelError, match="already in the library as 'mine'"):
        pull(f"{server.base}/models/tiny.gguf", name="again")
    assert library_state() == before and list(downloads_dir().iterdir()) == []


def test_a_complete_partial_is_finished_without_refetching(server):
    url = f"{server.base}/models/tiny.gguf"
    server.drop_after = len(BODY) - 1
    with pytest.raises(ChordError):
        pull(url)
    part = downloads_dir() / "tiny.gguf.part"
    with open(part, "ab") as fh:  # as if the last byte landed just before a crash
        fh.write(BODY[-1:])
    entry = pull(url)
    assert entry.sha256 == SHA
    assert server.requests[-1][1]["Range"] == f"bytes={len(BODY)}-"


def test_a_wrong_announced_checksum_is_refused(server):
    add_known = pull(f"{server.base}/models/tiny.gguf", name="first")
    assert add_known.sha256 == SHA
    before = library_state()
    server.headers["X-Linked-Etag"] = '"' + "0" * 64 + '"'
    server.files["/mirror/tiny.gguf"] = BODY
    with pytest.raises(ChordError) as info:
        pull(f"{server.base}/mirror/tiny.gguf", name="second")
    assert "checksum mismatch" in str(info.value) and SHA in str(info.value)
    assert library_state() == before
    assert list(downloads_dir().iterdir()) == []


def test_a_right_announced_checksum_in_a_quoted_etag_is_accepted(server):
    server.headers["ETag"] = f'"{SHA}"'
    assert pull(f"{server.base}/models/tiny.gguf").sha256 == SHA


def test_not_found_is_a_one_line_error(server):
    with pytest.raises(ChordError) as info:
        pull(f"{server.base}/models/absent.gguf")
    assert "404" in str(info.value) and "not found" in str(info.value) and "\n" not in str(info.value)
    assert library_state() == (None, [])


@pytest.mark.parametrize("status", [401, 403])
def test_access_denied_is_a_one_line_error(server, status):
    server.status = status
    with pytest.raises(ChordError, match=f"access denied \\(HTTP {status}\\)"):
        pull(f"{server.base}/models/tiny.gguf")


def test_a_download_that_is_not_a_model_is_refused(server):
    server.files["/models/page.gguf"] = b"<html>sign in to continue</html>" * 100
    with pytest.raises(ChordError, match="page.gguf.*not a usable model.*not a GGUF"):
        pull(f"{server.base}/models/page.gguf")
    assert library_state() == (None, [])
    assert list(downloads_dir().iterdir()) == []


def test_hf_sources_resolve_against_the_configured_hub(server, monkeypatch):
    monkeypatch.setenv("CHORD_HF_BASE_URL", server.base + "/")
    # the hub redirects to its CDN and puts the file's sha256 on the redirect only
    server.redirects["/owner/repo/resolve/main/sub/tiny.gguf"] = "/cdn/blob"
    server.redirect_headers["X-Linked-Etag"] = '"' + "f" * 64 + '"'
    server.files["/cdn/blob"] = BODY
    with pytest.raises(ChordError, match="checksum mismatch"):
        pull("hf:owner/repo/sub/tiny.gguf")
    assert server.requests[0][0] == "/owner/repo/resolve/main/sub/tiny.gguf"
    server.redirect_headers["X-Linked-Etag"] = f'"{SHA}"'
    entry = pull("hf:owner/repo/sub/tiny.gguf")
    assert entry.name == "tiny" and entry.sha256 == SHA
    assert entry.source == "hf:owner/repo/sub/tiny.gguf"


def test_resolve_source_shapes(monkeypatch):
    monkeypatch.delenv("CHORD_HF_BASE_URL", raising=False)
    url, filename = resolve_source("hf:bartowski/SmolLM2-GGUF/SmolLM2-Q4_K_M.gguf")
    assert url == pull_module.DEFAULT_HF_BASE + "/bartowski/SmolLM2-GGUF/resolve/main/SmolLM2-Q4_K_M.gguf"
    assert filename == "SmolLM2-Q4_K_M.gguf"
    assert resolve_source("https://example.org/a/b%20c.gguf") == ("https://example.org/a/b%20c.gguf", "b c.gguf")
    for bad in ("hf:owner/file.gguf", "ftp://x/y.gguf", "./model.gguf"):
        with pytest.raises(ChordError):
            resolve_source(bad)


def test_cancel_keeps_a_resumable_partial(server):
    cancel = threading.Event()

    def progress(done, total):
        if done > 0:
            cancel.set()  # after the first block has been written

    url = f"{server.base}/models/tiny.gguf"
    with pytest.raises(PullCancelled, match="resume"):
        pull(url, progress=progress, cancel=cancel)
    part = downloads_dir() / "tiny.gguf.part"
    kept = part.stat().st_size
    assert 0 < kept < len(BODY)
    entry = pull(url)
    assert server.requests[-1][1]["Range"] == f"bytes={kept}-"
    assert entry.sha256 == SHA


def test_a_full_disk_is_a_one_line_error_and_keeps_the_partial(server, monkeypatch):
    real_open = open

    class FullDisk:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def fake_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        return FullDisk(fh) if str(path).endswith(".part") and mode in ("ab", "wb") else fh

    monkeypatch.setattr(pull_module, "open", fake_open, raising=False)
    with pytest.raises(ChordError) as info:
        pull(f"{server.base}/models/tiny.gguf")
    assert "disk full" in str(info.value) and "resume" in str(info.value)
    assert list_entries() == []


def test_the_same_source_twice_is_refused(server):
    pull(f"{server.base}/models/tiny.gguf")
    with pytest.raises(ChordError, match="already in the library as 'tiny'"):
        pull(f"{server.base}/models/tiny.gguf")


def test_escaped_separators_in_a_url_cannot_leave_the_library():
    from chord_core.library.pull import resolve_source

    assert resolve_source("https://example.com/m/..%2F..%2F..%2F.bashrc.gguf")[1] == ".bashrc.gguf"
    assert resolve_source("https://example.com/m/a%5C..%5Cb.gguf")[1] == "b.gguf"
    assert resolve_source("https://example.com/m/..")[1] == "model.gguf"
    assert resolve_source("hf:o/r/sub/x.gguf")[1] == "x.gguf"
