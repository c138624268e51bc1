"""The decode loop: prefill, sample, decode, and speculative verification.

``Generator.run`` evaluates a prompt on a KV cache and yields the reply's
events (Started, TokenEvent, Stats, Notice); its return value (the
``yield from`` result) is the reply's ``GenerationResult``. The chat session
(session.py) owns everything around it: the template, fitting the
conversation into the context, the record.

Speculation: after a token is chosen, a drafter guesses the next few
(drafters.py); one forward over [token] + guesses gives the target's logits
at every guessed position, and the guesses are judged one position at a
time (speculative_sampling.py), each with the settings and the history
plain decoding would have there. The first rejected guess is replaced by
the judged token, the KV cache is truncated past it, and decoding goes on
from there. A forward of a few tokens gives each row the bits of a
one-token step (backend/base.py ROW_EXACT_MAX_T), so at temperature 0 the
tokens are exactly those of plain decoding. With a batcher (several
sessions' steps as one forward, decode_batcher.py) the loop decodes
plainly, one token per step through it, and leaves the batch whenever it
stops decoding: a prompt to evaluate, the reply's end, however it ends.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generator as PyGenerator, NamedTuple, Protocol

import numpy as np

from .drafters import OFF, DraftModel, Drafter, PromptLookup, Speculation
from .errors import ChordError
from .events import Event, Notice, Started, Stats, TokenAlternative, TokenEvent
from .kv_cache import KVCache
from .model import Model
from .sampling import SamplerSettings, Sampler, SettingsSource
from .speculative_sampling import DraftToken, judge
from .stop_strings import StopStringFilter
from .tokenizer import StreamDecoder

STATS_EVERY = 4  # tokens between Stats events while decoding
CANCEL_CHUNK = 128  # prompt tokens evaluated between two looks at the cancel event
DRAFT_MODEL_START = 4  # a draft model's guesses in a reply's first check


class StepBatcher(Protocol):
    """Runs the one-token decode steps of several sessions together."""

    def decode(self, token: int, cache: KVCache) -> np.ndarray:
        """Append ``token`` to ``cache``; the logits after it. A cache's first step joins the batch."""

    def leave(self, cache: KVCache) -> None:
        """``cache`` decodes no more for now: the others stop waiting for it."""


def common_prefix_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class GenerationResult:
    reason: str  # "stop" | "length" | "cancelled" | "stop_string"
    text: str
    token_ids: tuple[int, ...]
    stats: Stats
    seed: int
    settings: SamplerSettings  # as the reply started
    settings_changes: list[dict[str, Any]]  # [{"at_token": i, field: new value, ...}]
    reused_tokens: int
    speculation: dict[str, Any] | None = None  # drafter and acceptance, when guessing was on


class _Row(NamedTuple):
    """One position of a verify forward: the target's logits there, the guess
    to judge (None: the position after the last guess, sampled plainly), and
    how many cache tokens precede it."""

    logits: np.ndarray
    draft: DraftToken | None
    n_history: int


class Generator:
    def __init__(self, model: Model, cache: KVCache, batcher: StepBatcher | None = None,
                 speculation: Speculation | None = None):
        self.model = model
        self.cache = cache
        self.batcher = batcher  # None: model.eval of one token
        self.speculation = speculation or OFF  # read at every step: a change applies to the next check
        self._lookup: PromptLookup | None = None
        self._draft: DraftModel | None = None

    # -- prefill -------------------------------------------------------------------
    def prefill(self, ids: list[int], cancel: threading.Event | None = None):
        """Evaluate what the cache lacks of ``ids``; (logits of the last token, tokens
        reused), or (None, reused) if ``cancel`` was set between two chunks."""
        cache = self.cache
        if self.batcher is not None:  # a prompt takes a while: the batch goes on without this cache
            self.batcher.leave(cache)
        reuse = common_prefix_len(cache.tokens, ids)
        if reuse == len(ids):
            reuse -= 1  # logits come from evaluating at least one token
        cache.truncate(reuse)
        rest = ids[reuse:]
        # in chunks, so that a stop lands within one chunk even in a long prompt
        while len(rest) > CANCEL_CHUNK:
            if cancel is not None and cancel.is_set():
                return None, reuse
            self.model.eval(rest[:CANCEL_CHUNK], cache)
            rest = rest[CANCEL_CHUNK:]
        if cancel is not None and cancel.is_set():
            return None, reuse
        return self.model.eval(rest, cache), reuse

    # -- one step --------------------------------------------------------------------
    def _step(self, token: int) -> np.ndarray:
        if self.batcher is not None:
            return self.batcher.decode(token, self.cache)
        return self.model.eval([token], self.cache)

    def _drafter(self, spec: Speculation) -> list[Drafter]:
        drafters: list[Drafter] = []
        if spec.lookup:
            if self._lookup is None or self._lookup.max_ngram != spec.lookup:
                self._lookup = PromptLookup(spec.lookup)
            drafters.append(self._lookup)
        if spec.draft_model is not None:
            if self._draft is None or self._draft.model is not spec.draft_model:
                self._draft = DraftModel(spec.draft_model, self.cache.n_ctx)
            drafters.append(self._draft)
        return drafters

    def _guesses(self, token: int, k: int, n_draft: int, sampler: Sampler) -> list[DraftToken]:
        """Up to ``k`` guesses after the cache's tokens and ``token``: prompt
        lookup sizes its own draft by how long its match is; a draft model runs
        ``n_draft`` steps ahead (adapted to its recent acceptance), since each
        of its guesses costs a step."""
        spec = self.speculation
        if k <= 0 or not spec.enabled or self.batcher is not None:
            return []  # a batcher runs one token per session per step: decode plainly
        context = self.cache.tokens + [token]  # built only when someone guesses: it copies the whole context
        for drafter in self._drafter(spec):
            limit = k if drafter.sizes_its_own_draft else min(k, n_draft)
            guesses = drafter.propose(context, limit, sampler)
            if guesses:
                return guesses
        return []

    # -- the loop --------------------------------------------------------------------
    def run(self, prompt: list[int], source: SettingsSource, cancel: threading.Event,
            refit: Callable[[str], list[int] | None] | None = None,
            extra_stops: tuple[str, ...] = ()) -> PyGenerator[Event, None, GenerationResult]:
        try:
            return (yield from self._run(prompt, source, cancel, refit, extra_stops))
        finally:  # done, cancelled, failed or closed mid-reply: the batch must not wait for this cache
            if self.batcher is not None:
                self.batcher.leave(self.cache)

    def _run(self, prompt: list[int], source: SettingsSource, cancel: threading.Event,
             refit: Callable[[str], list[int] | None] | None,
             extra_stops: tuple[str, ...]) -> PyGenerator[Event, None, GenerationResult]:
        model, tok, cache = self.model, self.model.tokenizer, self.cache
        n_ctx = cache.n_ctx
        self._lookup = None  # prompt lookup follows one reply's copying and its guesses' fate: afresh for each
        first = source.snapshot()
        sampler = Sampler(source, seed=first.seed)
        t_start = time.perf_counter()
        logits, reused = self.prefill(prompt, cancel)  # None if stopped: the loop ends at once
        if logits is not None and not np.isfinite(logits).all():
            # damaged weights or metadata: say so rather than fail inside the sampler
            raise ChordError(f"{model.info.name}: the model computed non-finite logits (NaN or inf); "
                             "its weights or metadata are damaged")
        t_prefill = time.perf_counter() - t_start
        n_prefilled = cache.n_past - reused
        yield Started(prompt_tokens=len(prompt), reused_tokens=reused, n_ctx=n_ctx)
        decoder = StreamDecoder(tok)
        stops = StopStringFilter(first.stop + extra_stops)
        generated: list[int] = []
        text_parts: list[str] = []
        reason = "stop"
        t_first: float | None = None
        n_steps = 0  # tokens chosen from logits of a decode or verify forward
        refit_s = 0.0  # time spent evaluating the prompt again after a context refit
        last_settings, setting_changes = first, []
        rows: deque[_Row] = deque()  # positions of the last verify forward not judged yet
        kept_len = cache.n_past  # cache tokens that belong to the reply (the rest: unjudged guesses)
        proposed = accepted = 0
        # a draft model's guesses per check, adapted as HF's assistant does: a
        # check costs more with every row, so after a miss guess one more than
        # were kept, and after a full hit two more (up to draft_max)
        n_guess = DRAFT_MODEL_START
        rows_base = 0  # the cache length before the first guess of the last check

        def stats() -> Stats:
            now = time.perf_counter()
            busy = now - t_first - refit_s if t_first is not None else 0.0
            return Stats(prompt_tokens=len(prompt),
                         prefill_tok_s=n_prefilled / t_prefill if t_prefill > 0 else 0.0,
                         decode_tok_s=n_steps / busy if n_steps and busy > 0 else 0.0,
                         ttft_s=(t_first or now) - t_start, generated=len(generated),
                         n_past=min(cache.n_past, kept_len), n_ctx=n_ctx,
                         draft_proposed=proposed, draft_accepted=accepted)

        pieces: dict[int, str] = {}  # a reply shows the same few hundred tokens again and again

        def piece(i: int) -> str:
            text = pieces.get(i)
            if text is None:
                text = pieces[i] = tok.token_to_piece(i).decode("utf-8", errors="replace")
            return text

        while True:
            if cancel.is_set():
                reason = "cancelled"
                break
            settings = source.snapshot()  # read before every token: slider moves apply here
            # a source hands out the same object until a change (an identity test first: this runs every token)
            if settings is not last_settings and settings != last_settings:  # kept in the record: reproducible
                old = last_settings.to_dict()
                setting_changes.append({"at_token": len(generated),
                                        **{k: v for k, v in settings.to_dict().items() if old[k] != v}})
                last_settings = settings
                stops.stops = tuple(s for s in settings.stop + extra_stops if s)
            if settings.max_tokens is not None and len(generated) >= settings.max_tokens:
                reason = "length"
                break
            in_cache = False  # the chosen token is a kept guess, already evaluated
            if rows:
                row = rows.popleft()
                history = cache.tokens[:row.n_history]
                if row.draft is None:
                    st = sampler.sample(row.logits, history)
                    n_guess += 2  # every guess was kept
                else:
                    st, in_cache = judge(sampler, row.logits, history, row.draft)
                    accepted += in_cache
                    if not in_cache:
                        n_guess = row.n_history - rows_base + 1  # the guesses kept this check, plus one
                if not in_cache:  # the guesses from here on are void
                    cache.truncate(row.n_history)
                    rows.clear()
                n_steps += 1
            else:
                st = sampler.sample(logits, cache.tokens)
            if t_first is None:
                t_first = time.perf_counter()
            if tok.is_eog(st.id):
                break
            generated.append(st.id)
            if in_cache:
                kept_len += 1
            shown = stops.push(decoder.push(st.id))
            text_parts.append(shown)
            yield TokenEvent(id=st.id, piece=piece(st.id), text=shown, prob=st.prob,
                             alternatives=tuple(TokenAlternative(i, piece(i), p) for i, p in st.alternatives))
            if stops.hit is not None:
                reason = "stop_string"
                break
            if len(generated) % STATS_EVERY == 0:
                yield stats()
            if in_cache:
                continue
            if cache.n_past >= n_ctx:
                ids = refit("".join(text_parts) + stops.pending) if refit else None
                if ids is None:
                    yield Notice("context full: the reply was cut at the context size")
                    reason = "length"
                    break
                yield Notice("context full: the oldest messages were dropped and the prompt evaluated again")
                t_refit = time.perf_counter()
                logits, _ = self.prefill(ids, cancel)
                refit_s += time.perf_counter() - t_refit
                kept_len = cache.n_past
                continue
            # guesses: no more than the context holds or the reply may still use
            room = n_ctx - cache.n_past - 1
            left = settings.max_tokens - len(generated) if settings.max_tokens is not None else room
            n_guess = max(1, min(n_guess, self.speculation.draft_max))
            guesses = self._guesses(st.id, min(room, left, self.speculation.draft_max), n_guess, sampler)
            if guesses:
                out = model.eval([st.id] + [g.id for g in guesses], cache, all_logits=True)
                base = cache.n_past - len(guesses)  # the cache through st
                rows.extend(_Row(out[j], guesses[j] if j < len(guesses) else None, base + j)
                            for j in range(len(guesses) + 1))
                proposed += len(guesses)
                kept_len = rows_base = base
            else:
                logits = self._step(st.id)
                n_steps += 1
                kept_len = cache.n_past
        if cache.n_past > kept_len:  # guesses never judged: not part of the reply
            cache.truncate(kept_len)
        tail = stops.push(decoder.flush()) + stops.flush()
        if tail:
            text_parts.append(tail)
            yield TokenEvent(id=-1, piece="", text=tail, prob=1.0)
        final = stats()
        spec = self.speculation
        return GenerationResult(
            reason=reason, text="".join(text_parts), token_ids=tuple(generated), stats=final, seed=sampler.seed,
            settings=first, settings_changes=setting_changes, reused_tokens=reused,
            speculation={"drafter": spec.describe(), "draft_max": spec.draft_max, "proposed": proposed,
                         "accepted": accepted, "acceptance": final.acceptance,
                         "effective_tok_s": final.decode_tok_s} if spec.enabled or proposed else None)
