"""A batch's requests and answers, and their JSONL lines.

One input line is one request: ``{"messages": [{"role", "content"}, ...]}``
(a chat turn, through the model's template) or ``{"prompt": "..."}`` (plain
completion, as ``chord-chat run --raw``), with an optional ``"id"`` and any
sampler setting (``temperature``, ``seed``, ``max_tokens``, ``stop``, ...;
``"max_tokens": -1`` for no limit). One output line is one answer, carrying
the input line's ``index`` (0-based) and ``id``: the reply, its token
counts and ids, finish reason, seed and timings, or ``error``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ChordError
from .sampling import SamplerSettings

ROLES = ("system", "user", "assistant")
_SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(SamplerSettings))
_REQUEST_KEYS = frozenset({"id", "messages", "prompt"})


@dataclass(frozen=True)
class BatchRequest:
    """One request: ``messages`` (a chat turn) or ``prompt`` (a completion), never both."""

    messages: tuple[dict[str, str], ...] | None = None
    prompt: str | None = None
    settings: SamplerSettings = field(default_factory=SamplerSettings)
    id: str | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ChordError("a request needs either 'messages' or 'prompt' (not both)")
        if self.prompt is not None and (not isinstance(self.prompt, str) or not self.prompt):
            raise ChordError(f"'prompt' must be a non-empty string, got {self.prompt!r}")
        if self.messages is not None:
            object.__setattr__(self, "messages", _checked_messages(self.messages))

    @classmethod
    def from_json(cls, data: Any, defaults: SamplerSettings | None = None) -> BatchRequest:
        """A request from one parsed JSONL line; its settings override ``defaults``."""
        if not isinstance(data, dict):
            raise ChordError(f"expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - _REQUEST_KEYS - _SETTING_NAMES)
        if unknown:
            raise ChordError(f"unknown key(s) {', '.join(map(repr, unknown))} (a line has 'messages' or 'prompt', "
                             f"'id', and sampler settings: {', '.join(sorted(_SETTING_NAMES))})")
        changes = {k: v for k, v in data.items() if k in _SETTING_NAMES}
        if changes.get("max_tokens") == -1:
            changes["max_tokens"] = None
        settings = (defaults or SamplerSettings()).replace(**changes)
        request_id = data.get("id")
        if request_id is not None and not isinstance(request_id, (str, int)):
            raise ChordError(f"'id' must be a string or a number, got {request_id!r}")
        return cls(messages=data.get("messages"), prompt=data.get("prompt"), settings=settings,
                   id=None if request_id is None else str(request_id))


def _checked_messages(messages: Any) -> tuple[dict[str, str], ...]:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ChordError("'messages' must be a non-empty list of {\"role\", \"content\"} objects")
    checked = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ChordError(f"message {i}: expected an object with 'role' and 'content'")
        if m["role"] not in ROLES:
            raise ChordError(f"message {i}: role {m['role']!r} is not one of {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise ChordError(f"message {i}: content must be a string, got {type(m['content']).__name__}")
        checked.append({"role": m["role"], "content": m["content"]})
    if checked[-1]["role"] != "user":
        raise ChordError("nothing to answer: the last message must be the user's")
    return tuple(checked)


@dataclass(frozen=True)
class BatchResult:
    """One answer, or the error that took its place (``error`` set, the rest empty)."""

    index: int  # the request's position in the batch (its 0-based line in a file)
    id: str | None = None
    text: str = ""
    finish_reason: str | None = None  # "stop" | "length" | "stop_string"; None for an error
    prompt_tokens: int = 0
    completion_tokens: int = 0
    token_ids: tuple[int, ...] = ()
    seed: int | None = None
    timings: dict[str, float] = field(default_factory=dict)  # prefill_tok_s, decode_tok_s, ttft_s, total_s
    notices: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        head = {"index": self.index, "id": self.id}
        if self.error is not None:
            return {**head, "error": self.error}
        data = {**head, "text": self.text, "finish_reason": self.finish_reason,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "token_ids": list(self.token_ids), "seed": self.seed, "timings": self.timings}
        if self.notices:
            data["notices"] = list(self.notices)
        return data


class RequestError(ChordError):
    """A line that is no valid request: it is answered with this error, under its ``id`` if it had one."""

    def __init__(self, message: str, request_id: str | None = None):
        super().__init__(message)
        self.id = request_id


def _line_id(data: Any) -> str | None:
    found = data.get("id") if isinstance(data, dict) else None
    return str(found) if isinstance(found, (str, int)) else None


def read_requests(path: Path, defaults: SamplerSettings | None = None) -> list[BatchRequest | RequestError]:
    """Each non-blank line of ``path`` as a request, or the one-line error that
    line gets instead (it is answered with that error; the rest go on)."""
    return [request for _, request in read_numbered_requests(path, defaults)]


def read_numbered_requests(path: Path, defaults: SamplerSettings | None = None,
                           ) -> list[tuple[str, BatchRequest | RequestError]]:
    """``read_requests``, each request with where it came from (``"FILE: line N"``),
    so an error the engine raises later can name its line too."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ChordError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ChordError(f"{path}: cannot read ({err.strerror or err})") from None
    out: list[tuple[str, BatchRequest | RequestError]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            data = json.loads(line)
        except ValueError as err:
            out.append((where, RequestError(f"{where}: not JSON ({err})")))
            continue
        try:
            out.append((where, BatchRequest.from_json(data, defaults)))
        except ChordError as err:
            out.append((where, RequestError(f"{where}: {err}", _line_id(data))))
    if not out:
        raise ChordError(f"{path}: no requests (expected one JSON object per line)")
    return out


def read_done(path: Path, requests: list[BatchRequest | RequestError]) -> int:
    """How many answers ``path`` (a previous run's output) already holds, in order.

    A last line cut short by a kill is removed from the file; answers that
    are not those of ``requests`` (another input) are a one-line error, so
    nothing is appended to the wrong file."""
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with open(path, "r+b") as f:  # the line being written when the run was killed: it is done again
            f.truncate(len(complete))
    done = 0
    for number, line in enumerate(complete.decode("utf-8", errors="replace").splitlines(), 1):
        try:
            answer = json.loads(line)
        except ValueError:
            raise ChordError(f"{path}: line {number} is not JSON, so this is not a batch output; "
                             "choose another -o or remove it") from None
        index = answer.get("index") if isinstance(answer, dict) else None
        expected_id = requests[done].id if done < len(requests) else None
        if index != done or answer.get("id") != expected_id:
            raise ChordError(f"{path}: line {number} is not the answer to request {done} of this input "
                             f"(index {index!r}, id {answer.get('id') if isinstance(answer, dict) else None!r}); "
                             "choose another -o or remove it")
        done += 1
    return done
