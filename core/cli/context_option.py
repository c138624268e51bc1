"""The ``--ctx`` option of ``run`` and ``perplexity``: its floor, and the
warning llama.cpp gives for a context above the model's training context."""

from __future__ import annotations

import sys

from ..errors import ChordError
from ..model import Model

MIN_CTX = 16  # room for a prompt and a reply; perplexity scores the second half of a chunk


def check_ctx(n_ctx: int | None) -> None:
    if n_ctx is not None and n_ctx < MIN_CTX:
        raise ChordError(f"--ctx must be at least {MIN_CTX} tokens, got {n_ctx}")


def warn_above_training_context(model: Model, n_ctx: int | None) -> None:
    """One line on stderr naming both numbers: past its training context a model's output degrades."""
    train = model.info.context_length
    if n_ctx is not None and train and n_ctx > train:
        print(f"chord-chat: warning: --ctx {n_ctx} is above {model.info.name}'s training context of {train} "
              "tokens; replies past it may degrade", file=sys.stderr)
