"""A chat with a model on an OpenAI-compatible server, told as the engine's events.

``RemoteChat`` asks any server that speaks ``/v1/chat/completions`` with
``stream=true`` (chord-chat serve, llama.cpp's llama-server, Ollama, vLLM)
and yields the same ``chord_core.events`` a local ``ChatSession.stream``
does, so a caller cannot tell which one answered: Started, a TokenEvent per
token (per chunk when the server sends no log-probabilities), then Done
with Stats measured from the stream, or an ErrorEvent that says what went
wrong (unreachable, a refused key, a model the server does not have, a
stream that broke off) after the tokens that did arrive.

Threads: the HTTP exchange runs on a reader thread that hands server-sent
events over a queue; the caller's generator waits on that queue in short
steps and checks ``cancel`` between them, so a cancel is seen within a
step even while the server is still evaluating the prompt and has sent no
byte. A cancel shuts the socket down, which wakes the reader from its
blocking read (closing it would not: a read blocked in another thread
keeps the socket open), and the reply ends as ``Done("cancelled")``.
"""

from __future__ import annotations

import json
import math
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import httpx

from .errors import ChordError
from .events import Done, ErrorEvent, Event, Started, Stats, TokenAlternative, TokenEvent
from .library.remote import RemoteEntry
from .sampling import SamplerSettings, SettingsSource, as_settings_source
from .sse import server_sent_data

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 600.0  # a large model's prompt evaluation may take minutes before the first byte
CANCEL_POLL_S = 0.05  # how long the generator waits on the reader before it looks at ``cancel`` again
TOP_LOGPROBS = 5  # the inspector's alternatives, as the local engine reports them
# A server sends text, not its vocabulary's ids. Events still need an id >= 0 to count as a
# token (-1 marks the local decoder's closing flush of held-back text), so every one gets this.
UNKNOWN_TOKEN_ID = 0
UNKNOWN_PROB = math.nan  # the server sent no log-probabilities for this token
FINISH_REASONS = {"stop": "stop", "length": "length", "eos": "stop", "stop_sequence": "stop_string"}
ERROR_BODY_CHARS = 300


class RemoteError(ChordError):
    """The server could not be used: unreachable, refused, or it answered something unusable."""


def request_body(messages: list[dict[str, str]], settings: SamplerSettings, model: str | None) -> dict[str, Any]:
    """The request: the conversation and every sampler setting (llama.cpp's names for the
    ones OpenAI lacks, which llama-server, vLLM, Ollama and chord-chat serve all take)."""
    body: dict[str, Any] = {
        "messages": messages, "stream": True, "stream_options": {"include_usage": True},
        "temperature": settings.temperature, "top_p": settings.top_p, "top_k": settings.top_k,
        "min_p": settings.min_p, "typical_p": settings.typical_p, "repeat_penalty": settings.repeat_penalty,
        "repeat_last_n": settings.repeat_last_n, "presence_penalty": settings.presence_penalty,
        "frequency_penalty": settings.frequency_penalty,
        "logprobs": True, "top_logprobs": TOP_LOGPROBS,
    }
    if model is not None:
        body["model"] = model
    if settings.seed is not None:
        body["seed"] = settings.seed
    if settings.max_tokens is not None:
        body["max_tokens"] = settings.max_tokens
    if settings.stop:
        body["stop"] = list(settings.stop)
    return body


def error_message(response: httpx.Response) -> str:
    """The server's own words: OpenAI's {"error": {"message"}}, Ollama's {"error": "..."}, or the text."""
    try:
        data = json.loads(response.content)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, str):
        return error
    text = " ".join(response.content.decode("utf-8", "replace").split())
    return text[:ERROR_BODY_CHARS] or response.reason_phrase


def _prob(logprob: Any) -> float:
    return math.exp(logprob) if isinstance(logprob, (int, float)) and math.isfinite(logprob) else 0.0


def tokens_of(delta_text: str, logprobs: Any) -> list[TokenEvent]:
    """A chunk's tokens. With log-probabilities, one event per token the server lists (the
    chunk's text goes with the last, so the reply's text is the server's exactly); without,
    the chunk is one token of unknown probability."""
    entries = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(entries, list) or not entries:
        return [TokenEvent(UNKNOWN_TOKEN_ID, delta_text, delta_text, UNKNOWN_PROB)] if delta_text else []
    events = []
    for i, entry in enumerate(entries):
        entry = entry if isinstance(entry, dict) else {}
        alternatives = tuple(
            TokenAlternative(UNKNOWN_TOKEN_ID, str(alt.get("token", "")), _prob(alt.get("logprob")))
            for alt in entry.get("top_logprobs") or () if isinstance(alt, dict))
        text = delta_text if i == len(entries) - 1 else ""
        events.append(TokenEvent(UNKNOWN_TOKEN_ID, str(entry.get("token", "")), text, _prob(entry.get("logprob")),
                                 alternatives))
    return events


@dataclass
class _Reply:
    """What has arrived of one reply, and when."""

    started_at: float
    parts: list[str] = field(default_factory=list)
    tokens: int = 0
    first_at: float | None = None
    last_at: float | None = None
    finish: str | None = None
    done_marker: bool = False  # the stream's closing ``data: [DONE]``
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)

    def arrived(self, events: list[TokenEvent]) -> None:
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.tokens += len(events)
        self.parts.extend(e.text for e in events)

    @property
    def ended(self) -> bool:
        return self.done_marker or self.finish is not None

    def stats(self, n_ctx: int) -> Stats:
        generated = _int(self.usage.get("completion_tokens")) or self.tokens
        prompt = _int(self.usage.get("prompt_tokens"))
        span = (self.last_at - self.first_at) if self.first_at is not None and self.last_at is not None else 0.0
        # tokens after the first over the time they took: the first one's wait is the prompt's
        decode = (generated - 1) / span if generated > 1 and span > 0 else 0.0
        prefill = self.timings.get("prompt_per_second")
        return Stats(prompt_tokens=prompt, prefill_tok_s=float(prefill) if isinstance(prefill, (int, float)) else 0.0,
                     decode_tok_s=decode, ttft_s=(self.first_at - self.started_at) if self.first_at else 0.0,
                     generated=generated, n_past=prompt + generated, n_ctx=n_ctx)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class _Exchange:
    """One request on the reader thread; its results come out of ``items`` in order:
    ("response", Response), ("data", str)..., then ("end", None) or ("failed", exception)."""

    def __init__(self, client: httpx.Client, body: dict[str, Any]):
        self.items: queue.Queue = queue.Queue()
        self.abandoned = threading.Event()
        self.response: httpx.Response | None = None
        self._client, self._body = client, body
        self._thread = threading.Thread(target=self._run, name="chord-remote-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("POST", "chat/completions", json=self._body) as response:
                self.response = response
                if response.status_code != 200:
                    response.read()
                self.items.put(("response", response))
                if response.status_code == 200:
                    for data in server_sent_data(response.iter_lines()):
                        if self.abandoned.is_set():
                            return
                        self.items.put(("data", data))
            self.items.put(("end", None))
        except Exception as err:  # the caller turns it into an ErrorEvent (or a cancel)
            self.items.put(("failed", err))

    def abandon(self) -> None:
        """Stop reading and wake the reader from a blocked read (see the module's note)."""
        self.abandoned.set()
        stream = self.response.extensions.get("network_stream") if self.response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                pass

    def next(self, cancel: threading.Event) -> tuple[str, Any] | None:
        """The next item, or None once ``cancel`` is set."""
        while not cancel.is_set():
            try:
                return self.items.get(timeout=CANCEL_POLL_S)
            except queue.Empty:
                continue
        return None


class RemoteChat:
    """Chat completions from one remote library entry. ``transport``: httpx's seam, for tests."""

    def __init__(self, entry: RemoteEntry, transport: httpx.BaseTransport | None = None):
        self.entry = entry
        key = entry.api_key()  # read now, at use: a variable that is not set is one line, here
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=entry.url + "/", headers=headers, transport=transport,
                                    timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))
        self.model_id = entry.model
        self.n_ctx = 0  # the server's context, when its model list says (0: unknown)

    def close(self) -> None:
        self._client.close()

    # -- the server's model ------------------------------------------------------------
    def connect(self) -> "RemoteChat":
        """Ask the server for its models: it answers, the key is accepted, and (without
        ``--model``) which id to ask for. A server without /models is asked without one."""
        try:
            response = self._client.get("models", timeout=CONNECT_TIMEOUT_S)
        except httpx.HTTPError as err:
            raise RemoteError(self.transport_error(err)) from None
        if response.status_code == 404:
            return self
        if response.status_code != 200:
            raise RemoteError(self.http_error(response))
        try:
            listed = [m for m in response.json().get("data") or () if isinstance(m, dict) and isinstance(m.get("id"), str)]
        except (ValueError, AttributeError):
            raise RemoteError(f"{self.entry.url}/models: the answer is not an OpenAI model list") from None
        chosen = self._choose(listed)
        if chosen is not None:
            meta = chosen.get("meta") if isinstance(chosen.get("meta"), dict) else {}
            self.n_ctx = _int(meta.get("n_ctx")) or _int(meta.get("n_ctx_train"))
        return self

    def _choose(self, listed: list[dict]) -> dict | None:
        if self.model_id is not None:
            return next((m for m in listed if m["id"] == self.model_id), None)
        loaded = [m for m in listed if m.get("loaded") is True]  # chord-chat serve marks the one it serves
        if len(loaded) == 1 or len(listed) == 1:
            chosen = (loaded or listed)[0]
            self.model_id = chosen["id"]
            return chosen
        if listed:
            ids = ", ".join(m["id"] for m in listed[:8]) + (", …" if len(listed) > 8 else "")
            raise RemoteError(f"{self.entry.url} serves {len(listed)} models ({ids}): add the remote model again "
                              f"with --model ID to pick one")
        return None

    # -- errors, in one line --------------------------------------------------------------
    def http_error(self, response: httpx.Response) -> str:
        status, said = response.status_code, error_message(response)
        if status in (401, 403):
            hint = (f"the key from ${self.entry.api_key_env} was refused" if self.entry.api_key_env
                    else "it wants an API key: add the model again with --api-key-env VAR")
            return f"{self.entry.url}: {status} {said} ({hint})"
        if status == 404:
            return f"{self.entry.url}: the server has no model {self.model_id or '(default)'} (404: {said})"
        return f"{self.entry.url}: HTTP {status}: {said}"

    def transport_error(self, err: Exception) -> str:
        if isinstance(err, httpx.ConnectError):
            return f"cannot reach {self.entry.url}: {err or 'connection refused'}"
        if isinstance(err, (httpx.RemoteProtocolError, httpx.ReadError)):
            return f"{self.entry.url}: the connection broke off mid-reply ({err})"
        if isinstance(err, httpx.TimeoutException):
            return f"{self.entry.url} did not answer in time ({type(err).__name__})"
        return f"{self.entry.url}: {type(err).__name__}: {err}"

    # -- a reply ---------------------------------------------------------------------------
    def stream(self, messages: list[dict[str, str]], settings: SamplerSettings | SettingsSource | None,
               cancel: threading.Event | None = None) -> Iterator[Event]:
        """The reply to ``messages`` as events; the settings are read once, for this request
        (a server cannot take new ones mid-reply). Ends with Done or ErrorEvent."""
        cancel = cancel or threading.Event()
        snapshot = as_settings_source(settings).snapshot()
        reply = _Reply(started_at=time.monotonic())
        exchange = _Exchange(self._client, request_body(messages, snapshot, self.model_id))
        try:
            yield from self._events(exchange, reply, snapshot, cancel)
        finally:  # a consumer that stops listening stops the request too
            exchange.abandon()

    def _events(self, exchange: _Exchange, reply: _Reply, settings: SamplerSettings,
                cancel: threading.Event) -> Iterator[Event]:
        while (item := exchange.next(cancel)) is not None:
            kind, value = item
            if kind == "response":
                if value.status_code != 200:
                    yield ErrorEvent(self.http_error(value))
                    return
                yield Started(prompt_tokens=0, reused_tokens=0, n_ctx=self.n_ctx)
            elif kind == "data":
                failure = yield from self._chunk(value, reply)
                if failure is not None:
                    yield ErrorEvent(self._kept(failure, reply))
                    return
            elif kind == "failed":
                if cancel.is_set():
                    break
                yield ErrorEvent(self._kept(self.transport_error(value), reply))
                return
            else:  # the body ended
                if reply.ended:
                    yield self._done(reply, FINISH_REASONS.get(reply.finish or "stop", "stop"), settings)
                else:
                    yield ErrorEvent(self._kept(f"{self.entry.url}: the stream ended before the reply did", reply))
                return
            if reply.done_marker:
                yield self._done(reply, FINISH_REASONS.get(reply.finish or "stop", "stop"), settings)
                return
        yield self._done(reply, "cancelled", settings)

    def _chunk(self, data: str, reply: _Reply) -> Iterator[Event]:
        """Yield the chunk's tokens; return a failure's message, or None."""
        if data == "[DONE]":
            reply.done_marker = True
            return None
        try:
            chunk = json.loads(data)
        except ValueError:
            return f"{self.entry.url}: a stream chunk is not JSON: {data[:80]!r}"
        if not isinstance(chunk, dict):
            return f"{self.entry.url}: a stream chunk is not a JSON object: {data[:80]!r}"
        if "error" in chunk:  # an error after the stream began can only be told inside it
            error = chunk["error"]
            said = error.get("message") if isinstance(error, dict) else error
            return f"{self.entry.url}: the server failed mid-reply: {said}"
        if isinstance(chunk.get("usage"), dict):
            reply.usage = chunk["usage"]
        if isinstance(chunk.get("timings"), dict):  # llama-server's and chord-chat serve's
            reply.timings = chunk["timings"]
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        text = delta.get("content") if isinstance(delta.get("content"), str) else ""
        events = tokens_of(text, choice.get("logprobs"))
        if events:
            reply.arrived(events)
            yield from events
        if isinstance(choice.get("finish_reason"), str):
            reply.finish = choice["finish_reason"]
        return None

    def _kept(self, message: str, reply: _Reply) -> str:
        return f"{message} ({reply.tokens} tokens arrived and are kept)" if reply.tokens else message

    def _done(self, reply: _Reply, reason: str, settings: SamplerSettings) -> Done:
        stats = reply.stats(self.n_ctx)
        record = {
            "model": {"name": self.entry.name, "remote": self.entry.url, "id": self.model_id},
            "template": "the server's",
            "settings": settings.to_dict(),
            "seed": settings.seed,
            "timings": {"prompt_tokens": stats.prompt_tokens, "prefill_tok_s": stats.prefill_tok_s,
                        "decode_tok_s": stats.decode_tok_s, "ttft_s": stats.ttft_s, "generated": stats.generated},
            "finish_reason": reason,
        }
        return Done(reason=reason, text="".join(reply.parts), token_ids=(), stats=stats, record=record)
