"""The engine's events as OpenAI objects: whole responses and stream chunks.

One ``ReplyFormat`` per request knows its id, model and kind (chat or
completion) and writes every object of that reply, so a streamed reply and
a whole one carry the same fields.

Log-probabilities are the engine's own ``TokenEvent.prob`` and
``alternatives``: probabilities over the whole vocabulary after the
penalties and the temperature (temperature 1 for a greedy pick), before
top-k, top-p and min-p cut the candidates; the alternatives are the 5 most
probable tokens by that measure, whether or not they survived the cut.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, Callable

from ..events import Done, Started, TokenAlternative, TokenEvent

MIN_LOGPROB = -9999.0  # what OpenAI reports for a token of probability ~0 (JSON has no -inf)
FINISH_REASONS = {"stop": "stop", "stop_string": "stop", "length": "length", "cancelled": "stop"}


def logprob(p: float) -> float:
    return max(math.log(p), MIN_LOGPROB) if p > 0 else MIN_LOGPROB


def usage(started: Started, done: Done) -> dict[str, Any]:
    completion = len(done.token_ids)
    return {"prompt_tokens": started.prompt_tokens, "completion_tokens": completion,
            "total_tokens": started.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": started.reused_tokens}}


def timings(started: Started, done: Done) -> dict[str, Any]:
    """llama-server's ``timings`` object, from the engine's own measurements."""
    s = done.stats
    prompt_n = started.prompt_tokens - started.reused_tokens
    prompt_ms = prompt_n / s.prefill_tok_s * 1000 if s.prefill_tok_s > 0 else 0.0
    predicted_ms = s.generated / s.decode_tok_s * 1000 if s.decode_tok_s > 0 else 0.0
    return {
        "cache_n": started.reused_tokens,
        "prompt_n": prompt_n, "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / prompt_n if prompt_n else 0.0,
        "prompt_per_second": s.prefill_tok_s,
        "predicted_n": s.generated, "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_ms / s.generated if s.generated else 0.0,
        "predicted_per_second": s.decode_tok_s,
        "ttft_ms": s.ttft_s * 1000,
        # speculative decoding (one slot): llama-server's names for guesses checked and kept
        "draft_n": s.draft_proposed, "draft_n_accepted": s.draft_accepted,
    }


class ReplyFormat:
    def __init__(self, kind: str, model_id: str, token_bytes: Callable[[int], bytes], top_logprobs: int | None):
        self.kind = kind  # "chat" or "completion"
        self.model_id = model_id
        self.id = ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())
        self._token_bytes = token_bytes
        self.top_logprobs = top_logprobs  # None: no logprobs asked for
        self._offset = 0  # completion logprobs: where the next token's text starts

    # -- log-probabilities ---------------------------------------------------------
    def _chat_entry(self, token_id: int, text: str, prob: float) -> dict[str, Any]:
        return {"token": text, "logprob": logprob(prob), "bytes": list(self._token_bytes(token_id))}

    def chat_logprobs(self, tokens: list[TokenEvent]) -> dict[str, Any]:
        content = []
        for ev in tokens:
            alternatives: tuple[TokenAlternative, ...] = ev.alternatives[:self.top_logprobs]
            content.append({**self._chat_entry(ev.id, ev.piece, ev.prob),
                            "top_logprobs": [self._chat_entry(a.id, a.text, a.prob) for a in alternatives]})
        return {"content": content}

    def completion_logprobs(self, tokens: list[TokenEvent]) -> dict[str, Any]:
        offsets = []
        for ev in tokens:
            offsets.append(self._offset)
            self._offset += len(ev.piece)
        return {"tokens": [ev.piece for ev in tokens],
                "token_logprobs": [logprob(ev.prob) for ev in tokens],
                "top_logprobs": [{a.text: logprob(a.prob) for a in ev.alternatives[:self.top_logprobs]}
                                 for ev in tokens],
                "text_offset": offsets}

    def _logprobs(self, tokens: list[TokenEvent]) -> dict[str, Any] | None:
        if self.top_logprobs is None:
            return None
        tokens = [ev for ev in tokens if ev.id >= 0]  # the decoder's flushed tail is text, not a token
        return self.chat_logprobs(tokens) if self.kind == "chat" else self.completion_logprobs(tokens)

    # -- whole responses ---------------------------------------------------------
    def _envelope(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model_id}

    def response(self, started: Started, tokens: list[TokenEvent], done: Done) -> dict[str, Any]:
        finish = FINISH_REASONS.get(done.reason, "stop")
        if self.kind == "chat":
            choice = {"index": 0, "message": {"role": "assistant", "content": done.text},
                      "logprobs": self._logprobs(tokens), "finish_reason": finish}
            body = self._envelope("chat.completion")
        else:
            choice = {"index": 0, "text": done.text, "logprobs": self._logprobs(tokens), "finish_reason": finish}
            body = self._envelope("text_completion")
        return {**body, "choices": [choice], "usage": usage(started, done), "timings": timings(started, done)}

    # -- stream chunks -------------------------------------------------------------
    def _chunk(self, choice: dict[str, Any]) -> dict[str, Any]:
        obj = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
        return {**self._envelope(obj), "choices": [{"index": 0, **choice}]}

    def first_chunk(self) -> dict[str, Any] | None:
        """The chat stream opens with the assistant's role, as OpenAI's does."""
        if self.kind != "chat":
            return None
        return self._chunk({"delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None})

    def token_chunk(self, ev: TokenEvent) -> dict[str, Any] | None:
        """The chunk for one token; None when it adds nothing (text held back, no logprobs asked)."""
        lp = self._logprobs([ev])
        if not ev.text and (lp is None or ev.id < 0):
            return None
        if self.kind == "chat":
            return self._chunk({"delta": {"content": ev.text}, "logprobs": lp, "finish_reason": None})
        return self._chunk({"text": ev.text, "logprobs": lp, "finish_reason": None})

    def last_chunk(self, started: Started, done: Done) -> dict[str, Any]:
        finish = FINISH_REASONS.get(done.reason, "stop")
        choice = {"delta": {}} if self.kind == "chat" else {"text": ""}
        chunk = self._chunk({**choice, "logprobs": None, "finish_reason": finish})
        chunk["timings"] = timings(started, done)  # as llama-server's last chunk
        return chunk

    def usage_chunk(self, started: Started, done: Done) -> dict[str, Any]:
        """stream_options.include_usage: one more chunk, with no choices, carrying the usage."""
        obj = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
        return {**self._envelope(obj), "choices": [], "usage": usage(started, done)}
