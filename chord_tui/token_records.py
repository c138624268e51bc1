"""A reply's tokens as the chat keeps them: piece, probability, alternatives.

Plain data shared by the conversation state (which records them with each
reply) and the token inspector (which draws them)."""

from __future__ import annotations

import math
from typing import Any

from chord_core.events import TokenEvent

# piece, probability (None: unknown, a remote server sent no log-probabilities), alternatives
TokenRecord = tuple[str, float | None, list[tuple[str, float]]]


def token_record(event: TokenEvent) -> TokenRecord:
    # NaN is how an event says "unknown"; a record says None, which JSON (the store, exports) can hold
    prob = float(event.prob) if math.isfinite(event.prob) else None
    return (event.piece, prob, [(a.text, float(a.prob)) for a in event.alternatives])


def tokens_from_record(record: dict[str, Any]) -> list[TokenRecord]:
    """The tokens stored in a message's record (``record["tokens"]``)."""
    out: list[TokenRecord] = []
    for entry in record.get("tokens", ()):
        piece, prob, alts = entry
        out.append((piece, None if prob is None else float(prob), [(a[0], float(a[1])) for a in alts]))
    return out
