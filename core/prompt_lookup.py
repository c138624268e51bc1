"""Prompt lookup: guesses copied from earlier in the context, following a
copy across the edits a reply makes to it.

A reply that corrects or rewrites its input copies it in runs broken by
edits: a respelled word, an inserted comma, a dropped clause. Finding the
context's longest tail that occurs earlier (the n-gram match) follows a run;
after an edit the tail (the new word) occurs nowhere, and the match-length
rule loses a few steps finding the copy again and a few more checks
rebuilding a long draft. So the lookup also remembers where it was copying
from:

- **Copying**: while the reply goes on as the source did, the next guesses
  are the source's next tokens, as long a draft as the run so far earns.
- **An edit**: when the reply leaves a run of at least ``SURE_MATCH``
  tokens, the source position where it left is kept. The reply's latest
  token found in the source within ``RESYNC_WINDOW`` tokens after that
  position (the edit replaced or dropped what lies between) re-aligns the
  copy, and the draft goes on from there as long as the run before the edit
  earns (half of it: an edit makes the next one likelier); a one-token
  re-alignment guesses at most ``RESYNC_ONE_TOKEN`` tokens, since a common
  token can sit there by chance, and re-alignments are tried only while
  they hold often enough in this reply to pay for their rows.
- **Otherwise** the longest earlier match of the context's tail (at least
  ``min_ngram`` tokens), as many guesses as ``draft_length`` grants it.

Where two places are candidates, the one with the longer evidence (tokens
copied from there) wins. Finally a check's rows cost time even when their
guesses fail, so the draft is cut to the length that gives the most tokens
per unit of check time (``best_length``) if each guess holds with the
probability seen so far in this reply: a reply edited every dozen tokens
gets drafts of about 7 (one pass of the kernels' 8-row tiles), a faithful
copy 16. Guesses are only guesses: the generator checks each against the
target model, so none of this changes a reply's tokens.
"""

from __future__ import annotations

import numpy as np

from .sampling import Sampler
from .speculative_sampling import DraftToken

DEFAULT_LOOKUP = 3  # prompt lookup measures a match at least this far back (and as far as the draft can use)
SURE_MATCH = 4  # a lookup match this long is taken for a copy in progress (draft_length)
MIN_LOOKUP_NGRAM = 2  # a one-token match anywhere guesses wrong too often to pay for its check
RESYNC_WINDOW = 8  # source tokens after an edit searched for the reply's latest token (wider: chance hits)
RESYNC_ONE_TOKEN = 8  # guesses after a one-token re-alignment at most
RESYNC_TAIL = 8  # how far back a re-alignment's match is measured
EDIT_SPAN = 12  # reply tokens after an edit's start before the copy is given up for lost
# A check of r rows (the token and r - 1 guesses) costs CHECK_COST[r - 1] one-row steps: measured
# on SmolLM2 (Gemma's are within 5%; docs/benchmarks.md), rows come 8 to a kernel pass.
_ROWS, _COST = (1, 2, 4, 6, 8, 9, 13, 17, 33), (1.0, 1.22, 1.39, 1.64, 1.84, 2.13, 2.74, 3.34, 5.86)
CHECK_COST = np.interp(np.arange(1, _ROWS[-1] + 1), _ROWS, _COST)
PRIOR_MISSES, PRIOR_GUESSES = 1.0, 10.0  # before any check, a guess is taken to hold 9 times in 10
HISTORY_DECAY = 0.8  # the weight of a check's guesses in that estimate falls by this at each later check
PRIOR_RESYNC_HITS, PRIOR_RESYNCS = 1.0, 2.0  # and a re-alignment's first guess once in 2


def draft_length(match: int) -> int:
    """Guesses for a lookup match of ``match`` tokens. Measured on free chat
    (benchmarks/speculative.py), 2- and 3-token matches are mostly chance and
    a check of their guesses is a loss unless it is short; from 4 tokens on a
    copy is likely under way and runs on: one guess more than matched."""
    return match + 1 if match >= SURE_MATCH else max(1, match - 1)


def best_length(p_hold: float, limit: int, p_first: float | None = None) -> int:
    """The number of guesses (up to ``limit``; 0: none pays) that gives the
    most tokens per unit of check time when the first guess holds with
    ``p_first`` (default ``p_hold``) and each later one with ``p_hold`` after
    the one before it held: a check of g guesses gives
    1 + p_first (1 + p_hold + ... + p_hold^(g-1)) tokens."""
    g = np.arange(0, min(limit, len(CHECK_COST) - 1) + 1)
    first = p_hold if p_first is None else p_first
    tokens = 1 + first * np.concatenate([[0.0], np.cumsum(p_hold ** g[:-1])])
    return int(g[np.argmax(tokens / CHECK_COST[g])])


def tail_matches(ctx: np.ndarray, ends: np.ndarray, longest: int) -> np.ndarray:
    """For each of ``ends`` (positions just after an earlier copy of the
    context's last token), how many tokens of the context's tail match the
    tokens before it (at least 1, at most ``longest``)."""
    n = len(ctx)
    lengths = np.ones(len(ends), dtype=np.int64)
    alive = np.ones(len(ends), dtype=bool)
    for length in range(1, min(longest, n - 1)):
        before = ends - length - 1
        alive &= before >= 0
        alive[alive] = ctx[before[alive]] == ctx[n - length - 1]
        if not alive.any():
            break
        lengths += alive
    return lengths


class PromptLookup:
    sizes_its_own_draft = True

    def __init__(self, max_ngram: int = DEFAULT_LOOKUP, min_ngram: int = MIN_LOOKUP_NGRAM):
        self.max_ngram, self.min_ngram = max_ngram, min_ngram
        self._n = 0  # context length at the last proposal (0: none yet)
        self._last = -1  # the last token of that context
        self._src: int | None = None  # where the reply is copying from: the source's next token
        self._run = 0  # tokens copied from there: the evidence for the copy
        self._edit: tuple[int, int, int] | None = None  # (source, reply position, run) where a copy broke
        self._guessed = 0  # guesses in the last proposal
        self._resynced = False  # the last proposal re-aligned a copy after an edit
        self._judged = self._missed = 0.0  # this reply's guesses judged and missed, the older weighing less
        self._resyncs = self._resync_hits = 0.0  # its re-alignments, and those whose first guess held

    def propose(self, context: list[int], k: int, sampler: Sampler | None = None) -> list[DraftToken]:
        """Up to ``k`` guesses at the tokens after ``context`` (which ends with
        the token about to be evaluated), copied from earlier in it."""
        ctx = np.asarray(context, dtype=np.int64)
        n = len(ctx)
        if k <= 0 or n <= self.min_ngram:
            return []
        self._observe(ctx)
        at, length = self._choose(ctx, k)
        self._n, self._last, self._src = n, int(ctx[n - 1]), at
        if at is None:
            self._guessed = 0
            return []
        if length > 1 and not self._resynced:  # (a re-alignment's length is weighed in _choose)
            length = max(1, min(length, best_length(self._p_hold(), k)))
        guesses = ctx[at:at + min(k, length)]
        self._guessed = len(guesses)
        return [DraftToken(int(t)) for t in guesses]

    def _p_hold(self) -> float:
        """How likely a guess holds after the one before it held, going by this reply so far."""
        return 1 - (self._missed + PRIOR_MISSES) / (self._judged + PRIOR_GUESSES)

    def _observe(self, ctx: np.ndarray) -> None:
        """What came of the last proposal: the copy went on, or an edit broke it."""
        n = len(ctx)
        if not (0 < self._n < n and ctx[self._n - 1] == self._last):  # a new reply (or a rewind)
            self._src, self._run, self._edit = None, 0, None
            self._guessed, self._judged, self._missed = 0, 0.0, 0.0
            self._resynced, self._resyncs, self._resync_hits = False, 0.0, 0.0
            return
        new = ctx[self._n:]  # the tokens kept since: kept guesses and the judged token after them
        if self._src is not None:
            source = ctx[self._src:self._src + len(new)]
            same = np.flatnonzero(source != new[:len(source)])
            m = int(same[0]) if same.size else len(source)
            kept = min(m, self._guessed)
            if self._guessed:  # older checks count less: a reply copies faithfully in stretches
                self._judged = self._judged * HISTORY_DECAY + kept + (kept < self._guessed)
                self._missed = self._missed * HISTORY_DECAY + (kept < self._guessed)
            if self._resynced:
                self._resyncs += 1
                self._resync_hits += kept > 0
            if m == len(new):
                self._src += m
                self._run += m
                return
            if self._run + m >= SURE_MATCH:  # a copy under way was edited: remember where
                self._edit = (self._src + m, self._n + m, (self._run + m) // 2)
            self._src, self._run = None, 0
        if self._edit is not None and n - self._edit[1] > EDIT_SPAN:
            self._edit = None

    def _choose(self, ctx: np.ndarray, k: int) -> tuple[int | None, int]:
        """Where to copy from and how many tokens: the candidate with the most evidence."""
        n = len(ctx)
        self._resynced = False
        ends = np.flatnonzero(ctx[:n - 1] == ctx[n - 1]) + 1  # just after each earlier copy of the last token
        at, length = _longest_match(ctx, ends, max(self.max_ngram, k))
        evidence = length if length >= self.min_ngram else 0
        if self._src is not None and self._src < n and self._run >= evidence:
            return self._src, draft_length(self._run)
        if self._edit is not None:
            source, reply, run = self._edit
            near = ends[(ends > source) & (ends <= min(source + RESYNC_WINDOW, reply))]
            if near.size:
                lengths = tail_matches(ctx, near, RESYNC_TAIL)
                best = int(lengths.max())
                # how often a re-alignment held in this reply decides whether one pays
                p_first = (self._resync_hits + PRIOR_RESYNC_HITS) / (self._resyncs + PRIOR_RESYNCS)
                guesses = min(draft_length(run + best), best_length(self._p_hold(), k, p_first))
                if best == 1:
                    guesses = min(guesses, RESYNC_ONE_TOKEN)
                if run + best >= evidence and guesses:
                    self._edit, self._run, self._resynced = None, run + best, True
                    return int(near[np.flatnonzero(lengths == best)[0]]), guesses  # the nearest of the longest
        if not evidence:
            return None, 0
        self._run = length
        return at, draft_length(length)


def _longest_match(ctx: np.ndarray, ends: np.ndarray, longest: int) -> tuple[int, int]:
    """The end of the earlier occurrence of the context's longest matching
    tail (up to ``longest`` tokens; the latest among equals) and its length."""
    length = 1
    while length < longest and ends.size:
        room = ends[ends > length]  # room for one more token before the match
        longer = room[ctx[room - length - 1] == ctx[len(ctx) - length - 1]]
        if not longer.size:
            break
        ends, length = longer, length + 1
    return (int(ends[-1]), length) if ends.size else (0, 0)
