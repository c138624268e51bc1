"""The Starlette application: OpenAI's endpoints over one served model.

Every endpoint answers a failure with an OpenAI-style error object and the
status that goes with it (``errors.py``); nothing a client sends reaches
them as a traceback, and the server goes on serving. Generation runs on the
app's worker threads (``jobs.py``); the event loop only moves events.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Awaitable, Callable

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ChordError
from ..events import Done, ErrorEvent, Started, TokenEvent
from .admission import DEFAULT_QUEUE, Admission
from .errors import ApiError, error_body
from .jobs import Job
from .openai_format import ReplyFormat
from .params import GenerationRequest, chat_request, completion_request
from .request_body import DEFAULT_BODY_LIMIT, read_json_object
from .served_model import ServedModel

log = logging.getLogger("chord_core.server")
PUBLIC_PATHS = frozenset({"/health"})  # a probe learns only whether the model is up
MAX_WORKERS = 64  # generating threads are bounded by the slots; the rest answer 429 at once
SSE_PING_S = 15


class ModelHost:
    """The model being served; None while it loads (requests get 503 meanwhile)."""

    def __init__(self, served: ServedModel | None = None, queue: int = DEFAULT_QUEUE):
        self.queue = queue
        self.started = int(time.time())
        self.served: ServedModel | None = None
        self.admission: Admission | None = None
        if served is not None:
            self.serve(served)

    def serve(self, served: ServedModel) -> None:
        self.admission = Admission(served.n_slots, self.queue)
        self.served = served

    def require(self) -> ServedModel:
        if self.served is None:
            raise ApiError(503, "the model is still loading; try again shortly", code="model_loading",
                           headers={"Retry-After": "1"})
        return self.served


class BearerAuth:
    """ASGI middleware: every request but a health probe carries ``Authorization: Bearer KEY``."""

    def __init__(self, app, api_key: str):
        self.app = app
        self._key = api_key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        # constant time: how much of a guess matched does not show in the timing
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self._key):
            response = JSONResponse(error_body(401, "invalid or missing API key: send "
                                                    "'Authorization: Bearer KEY'", code="invalid_api_key"),
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _answers_errors(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Any failure inside ``endpoint`` is an error object, never a traceback to the client."""

    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiError as err:
            return _error_response(err)
        except Exception as err:  # a bug: one line in the log (CHORD_DEBUG=1 for the traceback), 500 out
            log.error("internal error on %s: %s: %s", request.url.path, type(err).__name__, err,
                      exc_info=bool(os.environ.get("CHORD_DEBUG")))
            return _error_response(ApiError(500, f"internal error: {type(err).__name__}: {err}"))

    return wrapped


async def _route_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no such endpoint: {request.url.path}",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
    return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code)


def _engine_error(ev: ErrorEvent) -> ApiError:
    return ApiError(500, ev.message, code="engine_error")


def _sse(chunk: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(chunk, ensure_ascii=False)}


class _JobStream(EventSourceResponse):
    """An SSE response that ends its job however the response ends, even when
    the client left before the first chunk (the chunk generator, never
    started, would run no ``finally``)."""

    def __init__(self, content, on_close: Callable[[], None], **kwargs):
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


class Endpoints:
    def __init__(self, host: ModelHost, body_limit: int):
        self.host = host
        self.body_limit = body_limit
        self.executor: ThreadPoolExecutor | None = None
        self.jobs: set[Job] = set()

    # -- generation ------------------------------------------------------------
    async def chat_completions(self, request: Request) -> Response:
        return await self._generate(request, chat_request, "chat")

    async def completions(self, request: Request) -> Response:
        return await self._generate(request, completion_request, "completion")

    def _check_model(self, data: dict, served: ServedModel) -> None:
        name = data.get("model")
        if name is not None and not isinstance(name, str):
            raise ApiError(400, f"model must be a string, got {name!r}", param="model")
        if name and name != served.model_id:
            raise ApiError(404, f"model {name!r} is not loaded: this server serves {served.model_id!r} "
                                f"(start `chord-chat serve {name}` to serve that one)",
                           param="model", code="model_not_found")

    async def _generate(self, request: Request, parse: Callable[[dict], GenerationRequest], kind: str) -> Response:
        served = self.host.require()
        data = await read_json_object(request, self.body_limit)
        gen = parse(data)
        self._check_model(data, served)
        fmt = ReplyFormat(kind, served.model_id, served.token_bytes, gen.top_logprobs)
        job = Job(lambda cancel: served.events(gen, cancel))
        self.jobs.add(job)
        watcher = asyncio.create_task(self._cancel_on_disconnect(request, job))
        handed_over = False
        try:
            admission = self.host.admission
            await admission.enter()  # 429 when the queue is full
            job.start(self.executor, on_end=admission.leave)
            first = await job.next()  # Started, or the reason it could not start
            if isinstance(first, ErrorEvent):
                async for _ in job:  # to its end, so the turn is back before the client hears
                    pass
                raise _engine_error(first)
            if gen.stream:
                watcher.cancel()  # sse-starlette watches the connection from here on
                handed_over = True
                return _JobStream(self._stream(job, fmt, first, gen), on_close=lambda: self._end(job),
                                  ping=SSE_PING_S)
            return JSONResponse(await self._whole(job, fmt, first))
        except StopAsyncIteration:
            raise ApiError(500, "the engine ended without a reply") from None
        finally:
            watcher.cancel()
            if not handed_over:
                self._end(job)

    def _end(self, job: Job) -> None:
        job.cancel.set()  # a no-op for a finished job; frees the slot of an abandoned one
        self.jobs.discard(job)

    async def _cancel_on_disconnect(self, request: Request, job: Job) -> None:
        # the body has been read: the next message is the client going away
        while (await request.receive())["type"] != "http.disconnect":
            pass
        job.cancel.set()

    async def _whole(self, job: Job, fmt: ReplyFormat, started: Started) -> dict[str, Any]:
        tokens: list[TokenEvent] = []
        done: Done | None = None
        failed: ErrorEvent | None = None
        # read to the end, not just to Done: the job ends once its slot is back, so a
        # client that sends its next request on receiving this reply finds the slot free
        async for ev in job:
            if isinstance(ev, TokenEvent):
                tokens.append(ev)
            elif isinstance(ev, ErrorEvent):
                failed = ev
            elif isinstance(ev, Done):
                done = ev
        if failed is not None:
            raise _engine_error(failed)
        if done is None:
            raise ApiError(500, "the engine ended without finishing the reply")
        return fmt.response(started, tokens, done)

    async def _stream(self, job: Job, fmt: ReplyFormat, started: Started, gen: GenerationRequest):
        """SSE chunks in OpenAI's format, then ``[DONE]``; an error after the
        first byte can only be reported in the stream, as OpenAI does."""
        try:
            first = fmt.first_chunk()
            if first is not None:
                yield _sse(first)
            async for ev in job:
                if isinstance(ev, TokenEvent):
                    chunk = fmt.token_chunk(ev)
                    if chunk is not None:
                        yield _sse(chunk)
                elif isinstance(ev, ErrorEvent):
                    yield _sse(_engine_error(ev).body())
                elif isinstance(ev, Done):
                    yield _sse(fmt.last_chunk(started, ev))
                    if gen.include_usage:
                        yield _sse(fmt.usage_chunk(started, ev))
            yield {"data": "[DONE]"}
        except ApiError as err:
            yield _sse(err.body())
        except Exception as err:  # a bug: reported in the stream, one line in the log
            log.error("stream failed: %s: %s", type(err).__name__, err, exc_info=bool(os.environ.get("CHORD_DEBUG")))
            yield _sse(error_body(500, f"internal error: {type(err).__name__}: {err}"))
        finally:  # also on a client gone mid-stream: sse-starlette cancels this generator
            self._end(job)

    # -- the rest ----------------------------------------------------------------
    async def models(self, request: Request) -> Response:
        from ..library import list_entries

        data = []
        served = self.host.served
        if served is not None:
            data.append({"id": served.model_id, "object": "model", "created": self.host.started,
                         "owned_by": "chord-chat", "loaded": True,
                         "meta": {"n_ctx": served.n_ctx, "slots": served.n_slots}})
        try:
            entries = await asyncio.to_thread(list_entries)
        except ChordError as err:  # a damaged library: the loaded model is still served
            log.error("cannot list the library: %s", err)
            entries = []
        for entry in entries:
            if served is None or entry.name != served.model_id:
                data.append({"id": entry.name, "object": "model", "created": _epoch(entry.added),
                             "owned_by": "library", "loaded": False})
        return JSONResponse({"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        served = self.host.require()
        return JSONResponse({"status": "ok", "model": served.model_id, "slots": served.n_slots})

    @asynccontextmanager
    async def lifespan(self, app):
        self.executor = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="chord-serve")
        try:
            yield
        finally:
            for job in list(self.jobs):  # replies still running end within a token
                job.cancel.set()
            self.executor.shutdown(wait=False, cancel_futures=True)


def _epoch(iso: str) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(iso).timestamp())
    except (TypeError, ValueError):
        return 0


def create_app(host: ModelHost, api_key: str | None = None, body_limit: int = DEFAULT_BODY_LIMIT) -> Starlette:
    ep = Endpoints(host, body_limit)
    routes = [
        Route("/v1/chat/completions", _answers_errors(ep.chat_completions), methods=["POST"]),
        Route("/v1/completions", _answers_errors(ep.completions), methods=["POST"]),
        Route("/v1/models", _answers_errors(ep.models), methods=["GET"]),
        Route("/health", _answers_errors(ep.health), methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _route_error}, lifespan=ep.lifespan)
    if api_key:
        app.add_middleware(BearerAuth, api_key=api_key)
    return app
