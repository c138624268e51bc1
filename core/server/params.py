"""A request's fields, checked and turned into what the engine takes.

Sampling fields become the engine's own ``SamplerSettings`` (so its
defaults, llama.cpp's, apply to anything left out, and its checks name the
field at fault). Every field is checked for its type here; a field nobody
knows is refused, as OpenAI refuses it, rather than silently ignored. A JSON
``null`` counts as absent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ChordError
from ..sampling import N_ALTERNATIVES, SamplerSettings
from .errors import bad_request

# request field -> SamplerSettings field
NUMBER_FIELDS = {
    "temperature": "temperature", "top_p": "top_p", "min_p": "min_p", "typical_p": "typical_p",
    "repeat_penalty": "repeat_penalty", "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
INT_FIELDS = {"top_k": "top_k", "seed": "seed", "repeat_last_n": "repeat_last_n",
              "max_tokens": "max_tokens", "max_completion_tokens": "max_tokens"}
# accepted and without effect on a local model (who is asking, storage, billing tier)
IGNORED_FIELDS = frozenset({"model", "user", "store", "metadata", "service_tier", "stream", "stream_options", "n",
                            "logprobs", "top_logprobs", "response_format", "logit_bias", "best_of", "echo"})
CHAT_ONLY = frozenset({"messages"})
COMPLETION_ONLY = frozenset({"prompt"})
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_STOPS = 16
MAX_SEED = 0xFFFFFFFF


@dataclass(frozen=True)
class GenerationRequest:
    """What a /v1/chat/completions or /v1/completions request asks for."""

    settings: SamplerSettings
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage
    top_logprobs: int | None = None  # None: no logprobs; 0..5: the chosen token's and that many alternatives
    messages: list[dict] | None = None  # chat
    prompt: str | None = None  # completion


def _number(data: dict, name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_request(f"{name} must be a finite number, got {value!r}", param=name)
    return value


def _integer(data: dict, name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name} must be a whole number, got {value!r}", param=name)
    return value


def _boolean(data: dict, name: str) -> bool:
    value = data.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false, got {value!r}", param=name)
    return value


def _stops(data: dict) -> tuple[str, ...]:
    stop = data.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise bad_request(f"stop must be a non-empty string or a list of them, got {stop!r}", param="stop")
    if len(stops) > MAX_STOPS:
        raise bad_request(f"stop has {len(stops)} strings; at most {MAX_STOPS}", param="stop")
    return tuple(stops)


def sampler_settings(data: dict) -> SamplerSettings:
    changes: dict[str, Any] = {}
    for name, field in NUMBER_FIELDS.items():
        value = _number(data, name)
        if value is not None:
            changes[field] = value
    for name, field in INT_FIELDS.items():
        value = _integer(data, name)
        if value is not None:
            changes[field] = value
    seed = changes.get("seed")
    if seed == -1:  # llama.cpp's "a random seed"
        changes["seed"] = None
    elif seed is not None and not 0 <= seed <= MAX_SEED:  # the generator takes 32 bits
        raise bad_request(f"seed must be between 0 and {MAX_SEED} (or -1 for a random one), got {seed}",
                          param="seed")
    if changes.get("max_tokens") == -1:  # llama.cpp's "no limit", as `run -n -1`
        changes["max_tokens"] = None
    changes["stop"] = _stops(data)
    try:
        return SamplerSettings(**changes)
    except ChordError as err:  # a value out of range: the engine's message names the field
        field = str(err).split(" ", 1)[0]
        raise bad_request(str(err), param=field if field in NUMBER_FIELDS or field in INT_FIELDS else None) from None


def _check_fields(data: dict, own: frozenset[str]) -> None:
    known = IGNORED_FIELDS | own | NUMBER_FIELDS.keys() | INT_FIELDS.keys() | {"stop"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise bad_request(f"unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
    n = _integer(data, "n")
    if n is not None and n != 1:
        raise bad_request(f"n must be 1 (one choice per request), got {n}", param="n")
    if data.get("logit_bias"):
        raise bad_request("logit_bias is not supported", param="logit_bias")
    fmt = data.get("response_format")
    if fmt is not None and fmt != {"type": "text"}:
        raise bad_request("response_format: only {\"type\": \"text\"} is supported", param="response_format")


def _stream_flags(data: dict) -> tuple[bool, bool]:
    stream = _boolean(data, "stream")
    options = data.get("stream_options")
    if options is None:
        return stream, False
    if not isinstance(options, dict):
        raise bad_request(f"stream_options must be an object, got {options!r}", param="stream_options")
    return stream, _boolean(options, "include_usage")


def _top_logprobs(value: int | None, name: str) -> int | None:
    if value is not None and not 0 <= value <= N_ALTERNATIVES:
        raise bad_request(f"{name} must be between 0 and {N_ALTERNATIVES} (the engine reports the "
                          f"{N_ALTERNATIVES} most likely tokens), got {value}", param=name)
    return value


def _content(message: dict, i: int) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: text only
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad_request(f"messages[{i}].content: only text parts are supported, got {part!r}",
                                  param=f"messages[{i}].content")
            texts.append(part["text"])
        return "".join(texts)
    raise bad_request(f"messages[{i}].content must be a string or a list of text parts, got {content!r}",
                      param=f"messages[{i}].content")


def _messages(data: dict) -> list[dict]:
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty list of {role, content} objects", param="messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad_request(f"messages[{i}] must be an object, got {m!r}", param=f"messages[{i}]")
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:  # a dict or list role is unhashable: 400, not 500
            raise bad_request(f"messages[{i}].role must be one of {', '.join(ROLES)}, got {role!r}",
                              param=f"messages[{i}].role")
        out.append({"role": ROLES[role], "content": _content(m, i)})
    return out


def _prompt(data: dict) -> str:
    prompt = data.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise bad_request(f"prompt must be a non-empty string, got {prompt!r}", param="prompt")
    return prompt


def chat_request(data: dict) -> GenerationRequest:
    _check_fields(data, CHAT_ONLY)
    messages = _messages(data)
    stream, include_usage = _stream_flags(data)
    wants = _boolean(data, "logprobs")
    top = _top_logprobs(_integer(data, "top_logprobs"), "top_logprobs")
    if top is not None and not wants:
        raise bad_request("top_logprobs needs logprobs set to true", param="top_logprobs")
    return GenerationRequest(settings=sampler_settings(data), stream=stream, include_usage=include_usage,
                             top_logprobs=(top or 0) if wants else None, messages=messages)


def completion_request(data: dict) -> GenerationRequest:
    _check_fields(data, COMPLETION_ONLY)
    if _boolean(data, "echo"):
        raise bad_request("echo is not supported", param="echo")
    best_of = _integer(data, "best_of")
    if best_of is not None and best_of != 1:
        raise bad_request(f"best_of must be 1, got {best_of}", param="best_of")
    prompt = _prompt(data)
    stream, include_usage = _stream_flags(data)
    # the legacy API's logprobs is a count: the chosen token's plus that many alternatives
    top = _top_logprobs(_integer(data, "logprobs"), "logprobs")
    return GenerationRequest(settings=sampler_settings(data), stream=stream, include_usage=include_usage,
                             top_logprobs=top, prompt=prompt)
