"""A small OpenAI-compatible server for the remote-model tests: what goes wrong on purpose.

``OpenAIDouble`` serves ``GET /v1/models`` and ``POST /v1/chat/completions``
(streamed, chunked SSE, as real servers send it) from a plain
``http.server`` on 127.0.0.1, port 0 (a free port; the socket is bound
before ``start`` returns, so nothing polls for readiness). Its attributes
script the next replies:

- ``reply``: the tokens streamed, one chunk each; ``logprobs``: whether
  chunks carry ``logprobs.content`` (with made-up but fixed numbers);
- ``api_key``: the key every request must bear (401 otherwise);
- ``models``: the ids ``/v1/models`` lists; a request naming another is 404;
- ``drop_after``: close the connection after that many tokens, mid-body;
- ``hold_after``: after that many tokens wait (bounded) for ``release`` or
  for the client to go away; ``client_gone`` is set once a write fails;
- ``stream_error``: an error chunk in place of the reply's end.

``requests`` records every chat request's JSON body, in order.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WAIT_S = 60.0  # bounds a held reply, far above any test's need


def token_logprob(index: int) -> float:
    return math.log(0.9 - 0.1 * (index % 5))


class OpenAIDouble:
    def __init__(self, reply: list[str] | None = None):
        self.reply = list(reply or ["Hello", ",", " world", "!"])
        self.logprobs = True
        self.api_key: str | None = None
        self.models = ["double-model"]
        self.n_ctx = 2048
        self.drop_after: int | None = None
        self.hold_after: int | None = None
        self.stream_error: str | None = None  # sent as an error chunk after the tokens (as serve does)
        self.release = threading.Event()
        self.holding = threading.Event()  # set once a reply waits at hold_after
        self.client_gone = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-double", daemon=True)

    def start(self) -> "OpenAIDouble":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(WAIT_S)

    def __enter__(self) -> "OpenAIDouble":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the replies -------------------------------------------------------------------
    def chunk(self, index: int, token: str) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": {"content": token}, "finish_reason": None, "logprobs": None}
        if self.logprobs:
            alts = [{"token": token, "logprob": token_logprob(index)}, {"token": f"alt{index}", "logprob": math.log(0.05)}]
            choice["logprobs"] = {"content": [{"token": token, "logprob": token_logprob(index), "top_logprobs": alts}]}
        return {"id": "chatcmpl-double", "object": "chat.completion.chunk", "choices": [choice]}

    def closing_chunks(self) -> list[dict[str, Any]]:
        if self.stream_error is not None:
            return [{"error": {"message": self.stream_error, "type": "server_error"}}]
        last = {"id": "chatcmpl-double", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}]}
        usage = {"id": "chatcmpl-double", "object": "chat.completion.chunk", "choices": [],
                 "usage": {"prompt_tokens": 12, "completion_tokens": len(self.reply), "total_tokens": 12 + len(self.reply)}}
        return [last, usage]

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: pytest shows failures, not access logs
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str) -> None:
                self._json(status, {"error": {"message": message, "type": "invalid_request_error"}})

            def _authorized(self) -> bool:
                if double.api_key is None or self.headers.get("Authorization") == f"Bearer {double.api_key}":
                    return True
                self._error(401, "invalid api key")
                return False

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path != "/v1/models":
                    self._error(404, f"no route {self.path}")
                    return
                self._json(200, {"object": "list", "data": [
                    {"id": m, "object": "model", "meta": {"n_ctx_train": double.n_ctx}} for m in double.models]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                double.requests.append(body)
                if not self._authorized():
                    return
                if body.get("model") not in (None, *double.models):
                    self._error(404, f"model {body.get('model')!r} not found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    self._stream()
                except OSError:  # the client went away (a cancel shuts its socket)
                    double.client_gone.set()

            def _send(self, payload: str) -> None:
                data = f"data: {payload}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def _stream(self) -> None:
                for index, token in enumerate(double.reply):
                    if index == double.drop_after:
                        self.close_connection = True
                        self.connection.shutdown(2)  # mid-body: no last chunk, no [DONE]
                        return
                    if index == double.hold_after:
                        double.holding.set()
                        self._hold()
                    self._send(json.dumps(double.chunk(index, token)))
                for chunk in double.closing_chunks():
                    self._send(json.dumps(chunk))
                self._send("[DONE]")
                self.wfile.write(b"0\r\n\r\n")

            def _hold(self) -> None:
                """Wait for ``release``; a client that left shows as a readable (closed) socket."""
                import select
                import socket

                for _ in range(int(WAIT_S / 0.05)):
                    if double.release.wait(0.05):
                        return
                    readable, _, _ = select.select([self.connection], [], [], 0)
                    if readable and not self.connection.recv(1, socket.MSG_DONTWAIT):  # MSG_DONTWAIT: b"" is EOF
                        raise OSError("client closed the connection")

        return Handler
