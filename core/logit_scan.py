"""The sampler's one look at the whole vocabulary per token.

Whatever the settings, a token needs three things from the penalized logits:
the best n tokens ranked (top-k's candidates and the 5 alternatives
reported), the highest logit, and log(sum(exp((l - peak) / T))) for the
reported probabilities. Everything after that works on the n candidates.

Two scanners compute them:

- ``NumpyScan``: the reference, in NumPy (several passes, each holding the GIL).
- ``CompiledScan``: ``chord_core._sampling``, in C with the GIL released, so
  that the samplers of concurrent streams (decode_batcher.py) scan at once
  instead of one after another. The same ranking exactly, the same peak, and
  log_total within a few parts in 1e7 (a vectorized exp, sums in double);
  NaN logits or an infinite peak go to the reference, as they did before.

``CHORD_SAMPLER=numpy`` or ``compiled`` forces one; unset, the compiled one
when its extension imports. ``CHORD_ISA`` picks the compiled scan's
instruction set, as it does the kernels'.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import numpy as np

from .errors import ChordError

SCANNER_ENV = "CHORD_SAMPLER"
SCANNER_NAMES = ("numpy", "compiled")


@dataclass(frozen=True)
class LogitScan:
    ids: np.ndarray  # int64: the best n tokens, higher logit first, equal logits by lower id
    logits: np.ndarray  # float32: their logits
    best: int  # the greedy pick: np.argmax's (the first highest logit)
    peak: np.float32  # the highest logit
    inv_t: np.float32  # 1 / temperature, as float32
    log_total: float  # log(sum(exp((logits - peak) * inv_t))), the differences and products in float32

    def prob(self, logit: np.float32) -> float:
        """The probability of a token whose logit is ``logit``, over the whole vocabulary."""
        return math.exp(float((np.float32(logit) - self.peak) * self.inv_t) - self.log_total)

    def probs(self, n: int) -> list[float]:
        """The probabilities of the first ``n`` ranked tokens (one NumPy pass, not n)."""
        scaled = ((self.logits[:n] - self.peak) * self.inv_t).tolist()
        return [math.exp(s - self.log_total) for s in scaled]


class Scanner(Protocol):
    name: str

    def scan(self, logits: np.ndarray, n: int, temperature: float) -> LogitScan:
        """``logits`` (float32) scanned for its ``n`` best tokens (n <= 0: all of them, sorted)."""


# --- the reference -----------------------------------------------------------


def rank(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids (int64) and logits of the ``k`` highest logits (all when k <= 0),
    by logit, ties by lower id, so runs are reproducible."""
    n = logits.shape[0]
    ids = _top_k_ids(logits, k) if 0 < k < n else np.arange(n)
    values = logits[ids]
    order = np.lexsort((ids, -values))
    return ids[order].astype(np.int64), values[order]


def _top_k_ids(logits: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k highest logits, unordered; O(n), the vocabulary is never sorted.

    Most of a large vocabulary sits far below the best logit: one comparison
    pass keeps a small superset of the top k (every token left out is below
    every token kept, so the superset holds them all) and the partition runs
    on that. If the pass keeps too few or too many, partition everything."""
    n = logits.shape[0]
    if n > 8192:
        kept = np.flatnonzero(logits >= logits.max() - np.float32(16.0))
        if k <= kept.size <= n // 16:
            return kept[_k_best(logits[kept], k)]
    return _k_best(logits, k)


def _k_best(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest values, unordered. Of values tied with the
    k-th highest, the first ones: a partition alone keeps any of them."""
    part = np.argpartition(values, values.size - k)[values.size - k:]
    kth = values[part].min()
    if np.count_nonzero(values == kth) == np.count_nonzero(values[part] == kth):
        return part  # no tie straddles the k-th place (nor can one, when kth is NaN)
    above = part[values[part] != kth]
    return np.concatenate((above, np.flatnonzero(values == kth)[:k - above.size]))


class NumpyScan:
    name = "numpy"

    def scan(self, logits: np.ndarray, n: int, temperature: float) -> LogitScan:
        ids, values = rank(logits, n)
        inv_t = np.float32(1.0 / temperature)
        peak = np.float32(np.max(logits))
        shifted = logits - peak  # one temporary, reused in place
        shifted *= inv_t
        np.exp(shifted, out=shifted)
        log_total = float(np.log(np.sum(shifted, dtype=np.float64)))
        # np.argmax takes a NaN as the highest; the ranking puts it last
        best = int(np.argmax(logits)) if np.isnan(peak) else int(ids[0])
        return LogitScan(ids, values, best, peak, inv_t, log_total)


# --- the compiled scan -------------------------------------------------------


# past this many tokens ranked (top_k 0 ranks the whole vocabulary), NumPy's
# partition and sort beat the C heap: the scan then only sums
HEAP_MAX = 1024


class CompiledScan:
    name = "compiled"

    def __init__(self, module: ModuleType):
        self._module = module  # chord_core._sampling
        self._reference = NumpyScan()

    @property
    def isa(self) -> str:
        return self._module.isa()

    def scan(self, logits: np.ndarray, n: int, temperature: float) -> LogitScan:
        logits = np.ascontiguousarray(logits, dtype=np.float32)
        size = logits.shape[0]
        k = size if n <= 0 or n >= size else n
        heap = k if k <= HEAP_MAX else 1  # past HEAP_MAX only the sum (and the peak, its best) comes from C
        ids = np.empty(heap, dtype=np.int64)
        values = np.empty(heap, dtype=np.float32)
        inv_t = np.float32(1.0 / temperature)
        found = self._module.scan(logits, float(inv_t), ids, values) if size else None
        if found is None:  # a NaN, an infinite peak (or nothing to scan): the reference's own answer
            return self._reference.scan(logits, n, temperature)
        if k > HEAP_MAX:
            ids, values = rank(logits, n)
        peak, log_total = found
        return LogitScan(ids, values, int(ids[0]), np.float32(peak), inv_t, log_total)


def compiled_unavailable_reason() -> str | None:
    """None when chord_core._sampling imports, else one line saying why not."""
    try:
        from . import _sampling  # noqa: F401
    except ImportError as e:
        return " ".join(str(e).split()) or type(e).__name__
    return None


def make_scanner(name: str | None) -> Scanner:
    """The scanner called ``name`` (None or "": the compiled one when it imports, else numpy)."""
    if name not in (None, "", *SCANNER_NAMES):
        raise ChordError(f"{SCANNER_ENV}={name!r} is not a scanner (choose from {', '.join(SCANNER_NAMES)})")
    if name == "numpy":
        return NumpyScan()
    reason = compiled_unavailable_reason()
    if reason is None:
        from . import _sampling
        return CompiledScan(_sampling)
    if name == "compiled":
        raise ChordError(f"{SCANNER_ENV}=compiled: the compiled scan is unavailable ({reason})")
    return NumpyScan()


@functools.cache
def default_scanner() -> Scanner:
    """The scanner ``CHORD_SAMPLER`` names, chosen once per process."""
    return make_scanner(os.environ.get(SCANNER_ENV))
