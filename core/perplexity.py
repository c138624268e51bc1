"""Perplexity the way llama-perplexity computes it.

The text is cut into chunks of n_ctx tokens; each chunk is evaluated from
a fresh context (its first token replaced by BOS when the model adds one)
and only the second half of each chunk is scored, so every scored token
has at least n_ctx/2 tokens of context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ChordError
from .model import Model


@dataclass
class PerplexityResult:
    perplexity: float
    n_scored: int
    n_chunks: int
    chunk_ppl: list[float]


def log_softmax_at(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log p(target) per row, computed in float64 for a stable sum."""
    rows = logits.astype(np.float64)
    m = rows.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(rows - m).sum(axis=1))
    return rows[np.arange(len(targets)), targets] - lse


class TextTooShortError(ChordError, ValueError):
    """The text has fewer tokens than one chunk (a ValueError too, as it was before the API had a contract)."""


def perplexity(model: Model, text: str, n_ctx: int = 512) -> PerplexityResult:
    tokens = model.tokenize(text, add_special=False)
    n_chunks = len(tokens) // n_ctx
    if n_chunks == 0:
        raise TextTooShortError(f"need at least {n_ctx} tokens, the text has {len(tokens)}; "
                                "use a smaller context (n_ctx, --ctx)")
    add_bos = model.tokenizer.add_bos
    first = n_ctx // 2
    nll, count, per_chunk = 0.0, 0, []
    for c in range(n_chunks):
        chunk = list(tokens[c * n_ctx:(c + 1) * n_ctx])
        if add_bos:
            chunk[0] = model.tokenizer.bos_id
        logits = model.logits(chunk)
        lp = log_softmax_at(logits[first:n_ctx - 1], np.asarray(chunk[first + 1:n_ctx]))
        nll -= lp.sum()
        count += len(lp)
        per_chunk.append(float(np.exp(-lp.mean())))
    return PerplexityResult(float(np.exp(nll / count)), count, n_chunks, per_chunk)
