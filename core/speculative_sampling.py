"""The speculative-sampling rule: keep a guessed token or replace it, so
that what comes out is distributed exactly as the target model's sampler.

p is the target's distribution and q the drafter's, both AFTER the
sampler's whole chain (penalties over the tokens so far, top-k, typical-p,
top-p, min-p, temperature) at that position. The guess d (drawn from q) is
kept with probability min(1, p(d) / q(d)); otherwise a token is drawn from
max(0, p - q), normalised. Then P(token = x) = p(x) for every x (Leviathan
et al. 2023, Chen et al. 2023). A deterministic drafter (prompt lookup) is
q = one-hot: d is kept with probability p(d), else drawn from p without d,
which is the same as drawing from p as plain decoding does and keeping d iff
it came out; so with prompt lookup a seed gives plain decoding's tokens.

Penalties depend on the tokens before the position, and every position is
judged with its own history (the kept guesses before it included), so p is
exactly what plain decoding would sample from there. At temperature 0 p is
one-hot on the penalized argmax: the guess is kept iff it is that token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sampling import MIN_TEMPERATURE, SampledToken, Sampler, apply_penalties, report, softmax, truncate


@dataclass(frozen=True)
class Distribution:
    """Candidate ids and their probabilities (float64, summing to 1)."""

    ids: np.ndarray
    probs: np.ndarray

    def prob(self, token: int) -> float:
        hit = np.flatnonzero(self.ids == token)
        return float(self.probs[hit[0]]) if hit.size else 0.0

    def on(self, ids: np.ndarray) -> np.ndarray:
        """The probabilities of ``ids`` (0 for those not among the candidates)."""
        order = np.argsort(self.ids)
        known = self.ids[order]
        at = np.minimum(np.searchsorted(known, ids), len(known) - 1)
        return np.where(known[at] == ids, self.probs[order][at], 0.0)


@dataclass(frozen=True)
class DraftToken:
    id: int
    q: Distribution | None = None  # None: proposed deterministically (q is one-hot on id)


def target_distribution(penalized: np.ndarray, sampler: Sampler) -> Distribution:
    """What the sampler draws from after its chain (non-greedy settings)."""
    cands = truncate(penalized, sampler.settings())
    return Distribution(cands.ids, softmax(cands.logits))


def _draw(dist: Distribution, u: float) -> int:
    running = np.cumsum(dist.probs)
    return int(dist.ids[min(int(np.searchsorted(running, running[-1] * u, side="right")), len(dist.ids) - 1)])


def propose(sampler: Sampler, logits: np.ndarray, history: list[int]) -> DraftToken:
    """A draft model's guess at one position: drawn from its own distribution
    after the same chain (the argmax at temperature 0), with that distribution."""
    settings = sampler.settings()
    penalized = apply_penalties(logits, history, settings)
    if settings.temperature < MIN_TEMPERATURE:
        return DraftToken(int(np.argmax(penalized)))
    q = target_distribution(penalized, sampler)
    return DraftToken(_draw(q, sampler.uniform()), q)


def judge(sampler: Sampler, logits: np.ndarray, history: list[int], draft: DraftToken) -> tuple[SampledToken, bool]:
    """The token at a position whose target logits are ``logits``, given the
    guess ``draft``; True when it is the guess (kept)."""
    if draft.q is None:
        # q one-hot: keeping d with probability p(d), else drawing from p without d, is
        # drawing from p and keeping d iff it came out. Drawn with the sampler's own
        # rule, the reply is then token for token the seeded plain one.
        token = sampler.sample(logits, history)
        return token, token.id == draft.id
    settings = sampler.settings()  # this position's settings: a slider moved mid-reply applies here
    penalized = apply_penalties(logits, history, settings)
    if settings.temperature < MIN_TEMPERATURE:
        token = int(np.argmax(penalized))
    else:
        p = target_distribution(penalized, sampler)
        p_d = p.prob(draft.id)
        q_d = draft.q.prob(draft.id)
        if q_d > 0 and sampler.uniform() * q_d < p_d:  # u < p/q, without dividing
            token = draft.id
        else:
            residual = np.maximum(p.probs - draft.q.on(p.ids), 0.0)
            if residual.sum() <= 0:  # p <= q everywhere: only d had mass (rounding); keep it
                token = draft.id
            else:
                token = _draw(Distribution(p.ids, residual / residual.sum()), sampler.uniform())
    return report(penalized, token, settings), token == draft.id
