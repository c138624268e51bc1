"""What a streaming generation reports, as plain dataclasses.

The session's generator yields these; the CLI prints them and the TUI
wraps each in a Textual message. Nothing here knows about either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TokenAlternative:
    id: int
    text: str
    prob: float  # after penalties and temperature, before truncation


@dataclass(frozen=True)
class Started:
    prompt_tokens: int  # tokens in the rendered prompt
    reused_tokens: int  # of those, already in the KV cache (not prefilled again)
    n_ctx: int


@dataclass(frozen=True)
class TokenEvent:
    id: int
    piece: str  # the token's own text (may be a partial UTF-8 sequence shown with U+FFFD)
    text: str  # newly completed, valid UTF-8 text for the stream (may be "" while held back)
    prob: float
    alternatives: tuple[TokenAlternative, ...] = ()  # top-5


@dataclass(frozen=True)
class Stats:
    prompt_tokens: int
    prefill_tok_s: float
    decode_tok_s: float
    ttft_s: float
    generated: int
    n_past: int  # context used
    n_ctx: int  # context size
    # speculative decoding: guessed tokens checked by the model, and of those the ones it kept
    draft_proposed: int = 0
    draft_accepted: int = 0

    @property
    def acceptance(self) -> float | None:
        """The share of guessed tokens kept; None when nothing was guessed."""
        return self.draft_accepted / self.draft_proposed if self.draft_proposed else None


@dataclass(frozen=True)
class Notice:
    message: str


@dataclass(frozen=True)
class Done:
    reason: str  # "stop" | "length" | "cancelled" | "stop_string"
    text: str
    token_ids: tuple[int, ...]
    stats: Stats
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorEvent:
    message: str


Event = Started | TokenEvent | Stats | Notice | Done | ErrorEvent
