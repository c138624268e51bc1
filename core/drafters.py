"""Drafters: cheap guesses at the next few tokens, for speculative decoding.

A drafter proposes up to k tokens that follow ``context`` (the prompt and the
reply so far, the token about to be evaluated last); the generator checks
them all in one forward of the target model (generator.py) and keeps the
ones the target agrees with (speculative_sampling.py). Two kinds:

- ``PromptLookup`` (prompt_lookup.py): the tokens that followed the
  context's tail earlier in it, following a copy across the reply's edits.
  No second model; it pays where the reply copies its input (rewrites,
  corrections, code edits) and costs one search per step elsewhere.
- ``DraftModel``: a smaller model with the same vocabulary, run ahead k
  steps on its own KV cache, which follows the context by prefix reuse
  (so a rejected guess is rolled back by the next call's truncate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .backend.base import ROW_EXACT_MAX_T
from .errors import ChordError
from .kv_cache import KVCache
from .model import Model
from .prompt_lookup import DEFAULT_LOOKUP, MIN_LOOKUP_NGRAM, PromptLookup  # noqa: F401 (the drafters' one home)
from .sampling import Sampler
from .speculative_sampling import DraftToken, propose

DEFAULT_DRAFT_MAX = 16  # guesses per check at most; prompt lookup guesses as many as its copy earns and pay for their rows
MAX_DRAFT_MAX = ROW_EXACT_MAX_T - 1  # a check of more rows than that is no longer exact
MAX_LOOKUP = 16


@dataclass(frozen=True)
class Speculation:
    """How a session guesses ahead: prompt lookup (n-grams up to ``lookup``
    tokens; 0 off), a draft model, at most ``draft_max`` guesses per check."""

    lookup: int = DEFAULT_LOOKUP
    draft_max: int = DEFAULT_DRAFT_MAX
    draft_model: Model | None = None

    def __post_init__(self) -> None:
        for name, value, low, high in (("draft-max", self.draft_max, 1, MAX_DRAFT_MAX),
                                       ("lookup", self.lookup, 0, MAX_LOOKUP)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ChordError(f"--{name} must be a whole number from {low} to {high}, got {value!r}")
        if self.lookup and self.lookup < MIN_LOOKUP_NGRAM:
            raise ChordError(f"--lookup must be 0 (off) or at least {MIN_LOOKUP_NGRAM} tokens, got {self.lookup}")

    @property
    def enabled(self) -> bool:
        return bool(self.lookup) or self.draft_model is not None

    def describe(self) -> str:
        parts = [f"lookup {self.lookup}"] if self.lookup else []
        if self.draft_model is not None:
            parts.append(f"draft {self.draft_model.info.name}")
        return " + ".join(parts) or "off"


OFF = Speculation(lookup=0)


class Drafter(Protocol):
    # True: it picks how many of the k it guesses (prompt lookup, by its match);
    # False: each guess costs it a step, so the generator caps k by recent acceptance
    sizes_its_own_draft: bool

    def propose(self, context: list[int], k: int, sampler: Sampler) -> list[DraftToken]: ...


class DraftModel:
    """A smaller model guessing ahead on its own KV cache."""

    sizes_its_own_draft = False

    def __init__(self, model: Model, n_ctx: int):
        self.model = model
        self.cache: KVCache = model.new_cache(n_ctx)

    def propose(self, context: list[int], k: int, sampler: Sampler) -> list[DraftToken]:
        cache = self.cache
        reuse = _common_prefix_len(cache.tokens, context)
        if reuse == len(context):
            reuse -= 1  # logits come from evaluating at least one token
        cache.truncate(reuse)
        logits = self.model.eval(context[reuse:], cache)
        history = list(context)
        drafts: list[DraftToken] = []
        for i in range(k):
            d = propose(sampler, logits, history)
            drafts.append(d)
            history.append(d.id)
            if i == k - 1 or self.model.tokenizer.is_eog(d.id):  # nothing worth guessing after the end
                break
            logits = self.model.eval([d.id], cache)
        return drafts


def _common_prefix_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def check_draft_model(target: Model, draft: Model) -> str | None:
    """A one-line error unless ``draft`` shares ``target``'s vocabulary;
    a warning (returned) when the draft is not smaller than the target."""
    t_tok, d_tok = target.tokenizer, draft.tokenizer
    t_vocab, d_vocab = list(t_tok.id_to_token), list(d_tok.id_to_token)
    name, target_name = draft.info.name, target.info.name
    for i in range(max(len(t_vocab), len(d_vocab))):
        t = t_vocab[i] if i < len(t_vocab) else None
        d = d_vocab[i] if i < len(d_vocab) else None
        if t != d:
            raise ChordError(f"draft model {name}: its vocabulary differs from {target_name}'s at token {i}: "
                             f"{_shown(d)} where the target has {_shown(t)} (a draft model needs the same vocabulary)")
    for what in ("bos_id", "eos_id"):
        if getattr(t_tok, what, None) != getattr(d_tok, what, None):
            raise ChordError(f"draft model {name}: its {what.replace('_id', '')} token is "
                             f"{getattr(d_tok, what, None)}, {target_name}'s is {getattr(t_tok, what, None)}")
    if draft.info.n_params >= target.info.n_params:
        return (f"draft model {name} ({draft.info.n_params:,} parameters) is not smaller than {target_name} "
                f"({target.info.n_params:,}): guessing will cost more than it saves")
    return None


def _shown(token) -> str:
    return "no token" if token is None else repr(token)
