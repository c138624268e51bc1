"""A reply's tokens as the chat keeps them: piece, probability, alternatives.

Plain data shared by the conversation state (which records them with each
reply) and the token inspector (which draws them)."""

from __future__ import annotations

from typing import Any

from chord_core.events import TokenEvent

TokenRecord = tuple[str, float, list[tuple[str, float]]]  # piece, prob, alternatives


def token_record(event: TokenEvent) -> TokenRecord:
    return (event.piece, float(event.prob), [(a.text, float(a.prob)) for a in event.alternatives])


def tokens_from_record(record: dict[str, Any]) -> list[TokenRecord]:
    """The tokens stored in a message's record (``record["tokens"]``)."""
    out: list[TokenRecord] = []
    for entry in record.get("tokens", ()):
        piece, prob, alts = entry
        out.append((piece, float(prob), [(a[0], float(a[1])) for a in alts]))
    return out
