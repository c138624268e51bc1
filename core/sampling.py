"""Choosing the next token from the model's logits, the way llama.cpp does.

The chain is llama.cpp's default (common/common.h, src/llama-sampling.cpp):
penalties, top-k, typical-p, top-p, min-p, temperature, then a seeded draw.
Top-n-sigma, DRY and XTC sit in that chain too but are off by default and not
offered here. ``temperature <= 0`` is greedy: the argmax of the penalized
logits, which is what llama.cpp's chain ends up choosing in that case.

Settings may change while a reply streams: the sampler asks its settings
source for a snapshot before every token, so a change made from the UI
thread through ``LiveSettings`` applies from the next token on.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .errors import ChordError
from .logit_scan import LogitScan, Scanner, default_scanner, rank
from .rng import Mt19937Uniform

N_ALTERNATIVES = 5
# the reply limit `run` and the chat UI apply unless told otherwise: a chat
# model stops at its end-of-turn token long before; a base model may never emit one
DEFAULT_MAX_TOKENS = 512
# below this a temperature only overflows float32 (logits / 1e-45 = inf): it is greedy
MIN_TEMPERATURE = 1e-4


@dataclass(frozen=True)
class SamplerSettings:
    """Sampling parameters; the defaults are llama.cpp's (common_params_sampling)."""

    temperature: float = 0.8  # <= 0: greedy
    top_k: int = 40  # <= 0: whole vocabulary
    top_p: float = 0.95  # 1.0: off
    min_p: float = 0.05  # 0.0: off
    typical_p: float = 1.0  # 1.0: off
    repeat_penalty: float = 1.0  # 1.0: off
    repeat_last_n: int = 64  # tokens the penalties look back over; 0 off, -1 all
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None  # None: a fresh random seed per sampler
    max_tokens: int | None = None  # None: until end of turn or a full context
    stop: tuple[str, ...] = ()  # strings that end the reply (not included in it)

    def __post_init__(self) -> None:
        for name, low, high in (("top_p", 0.0, 1.0), ("min_p", 0.0, 1.0), ("typical_p", 0.0, 1.0)):
            _check_number(name, getattr(self, name), low, high)
        for name in ("temperature", "presence_penalty", "frequency_penalty"):
            _check_number(name, getattr(self, name))
        _check_number("repeat_penalty", self.repeat_penalty)
        if self.repeat_penalty <= 0:
            raise ChordError(f"repeat_penalty must be > 0, got {self.repeat_penalty}")
        _check_int("top_k", self.top_k)
        _check_int("repeat_last_n", self.repeat_last_n, low=-1)
        if self.seed is not None:  # llama.cpp's seeds are 32-bit, and std::mt19937 takes one
            _check_int("seed", self.seed, low=0)
            if self.seed > 0xFFFFFFFF:
                raise ChordError(f"seed must be at most 4294967295 (32 bits), got {self.seed}")
        if self.max_tokens is not None:
            _check_int("max_tokens", self.max_tokens, low=1)
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        if not all(isinstance(s, str) and s for s in stop):
            raise ChordError(f"stop must be a list of non-empty strings, got {list(stop)!r}")
        object.__setattr__(self, "stop", stop)  # a list given by a caller becomes immutable

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stop"] = list(self.stop)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplerSettings:
        unknown = sorted(set(data) - _FIELD_NAMES)
        if unknown:
            raise ChordError(f"unknown sampler setting(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> SamplerSettings:
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise ChordError(f"unknown sampler setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(SamplerSettings))


def _check_number(name: str, value: Any, low: float | None = None, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ChordError(f"{name} must be a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ChordError(f"{name} must be between {low} and {high}, got {value}")


def _check_int(name: str, value: Any, low: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ChordError(f"{name} must be a whole number, got {value!r}")
    if low is not None and value < low:
        raise ChordError(f"{name} must be >= {low}, got {value}")


class SettingsSource(Protocol):
    def snapshot(self) -> SamplerSettings: ...


class LiveSettings:
    """Settings shared between the UI thread (writes) and the generating thread (reads)."""

    def __init__(self, settings: SamplerSettings | None = None):
        self._lock = threading.Lock()
        self._settings = SamplerSettings() if settings is None else settings

    def snapshot(self) -> SamplerSettings:
        # SamplerSettings is frozen, so handing out the current object is a
        # consistent snapshot: an update replaces it, never mutates it.
        with self._lock:
            return self._settings

    def update(self, **changes: Any) -> SamplerSettings:
        """Apply ``changes`` atomically; invalid values raise and change nothing."""
        with self._lock:
            self._settings = self._settings.replace(**changes)
            return self._settings

    def set(self, settings: SamplerSettings) -> None:
        with self._lock:
            self._settings = settings


def as_settings_source(settings: SamplerSettings | SettingsSource | None) -> SettingsSource:
    """Fixed settings (or the defaults, for None) as a source; a source as it is."""
    if settings is None or isinstance(settings, SamplerSettings):
        return LiveSettings(settings)
    if not callable(getattr(settings, "snapshot", None)):
        raise ChordError(f"settings must be a SamplerSettings or LiveSettings, got {type(settings).__name__} "
                         "(SamplerSettings.from_dict makes one from a dict)")
    return settings


@dataclass(frozen=True)
class SampledToken:
    id: int
    prob: float  # after penalties and temperature, before truncation
    alternatives: tuple[tuple[int, float], ...]  # the 5 most probable tokens, same measure


@dataclass(frozen=True)
class Candidates:
    """Tokens still in the running, most likely first."""

    ids: np.ndarray  # int64
    logits: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.ids)

    def probs(self) -> np.ndarray:
        return softmax(self.logits)

    def keep(self, positions: np.ndarray | slice) -> Candidates:
        return Candidates(self.ids[positions], self.logits[positions])


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits.astype(np.float64) - np.max(logits))
    return shifted / shifted.sum()


def llama_softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities of sorted candidates in float32, summed in order, as
    llama.cpp's samplers compute them: the cut-offs of top-p then fall where
    llama.cpp's do, even when the running sum lands right on p."""
    p = np.exp((logits - logits[0]).astype(np.float32))
    p /= np.cumsum(p, dtype=np.float32)[-1]  # a running sum, not numpy's pairwise one
    return p


# --- the chain's steps, in order -------------------------------------------


def apply_penalties(logits: np.ndarray, history: list[int], settings: SamplerSettings) -> np.ndarray:
    """A copy of ``logits`` with llama.cpp's repeat, frequency and presence penalties applied.

    Each distinct token among the last ``repeat_last_n`` of ``history`` has
    its logit divided by ``repeat_penalty`` if positive (multiplied if not,
    so a penalty always makes it less likely), then lowered by
    ``count * frequency_penalty + presence_penalty``.
    """
    n = settings.repeat_last_n
    off = settings.repeat_penalty == 1.0 and settings.frequency_penalty == 0.0 and settings.presence_penalty == 0.0
    if off or n == 0 or not history:
        return np.asarray(logits, dtype=np.float32)  # nothing to change: no copy of the vocabulary
    out = np.array(logits, dtype=np.float32, copy=True)
    window = np.asarray(history if n < 0 else history[-n:], dtype=np.int64)
    window = window[(window >= 0) & (window < out.shape[0])]
    ids, counts = np.unique(window, return_counts=True)
    if ids.size == 0:
        return out
    values = out[ids]
    penalty = np.float32(settings.repeat_penalty)
    values = np.where(values <= 0, values * penalty, values / penalty)
    values -= counts.astype(np.float32) * np.float32(settings.frequency_penalty) + np.float32(settings.presence_penalty)
    out[ids] = values
    return out


def top_k(logits: np.ndarray, k: int) -> Candidates:
    """The ``k`` highest logits, sorted by logit, ties by lower id (all of them when k <= 0)."""
    return Candidates(*rank(logits, k))


def typical_p(cands: Candidates, p: float) -> Candidates:
    """Locally typical sampling: keep tokens whose surprise is nearest the entropy, up to mass > p."""
    if p >= 1.0 or len(cands) <= 1:
        return cands
    probs = cands.probs()
    with np.errstate(divide="ignore", invalid="ignore"):
        surprise = -np.log(probs)
        entropy = -np.sum(np.where(probs > 0, probs * np.log(probs), 0.0))
    order = np.argsort(np.abs(surprise - entropy), kind="stable")
    cumulative = np.cumsum(probs[order])
    over = np.nonzero(cumulative > p)[0]
    n_keep = over[0] + 1 if over.size else len(cands)
    return cands.keep(np.sort(order[:n_keep]))  # back in logit order


def top_p(cands: Candidates, p: float) -> Candidates:
    """Nucleus sampling: the most likely tokens until their mass reaches p."""
    if p >= 1.0:
        return cands
    cumulative = np.cumsum(llama_softmax(cands.logits), dtype=np.float32)
    reached = np.nonzero(cumulative >= np.float32(p))[0]
    n_keep = reached[0] + 1 if reached.size else len(cands)
    return cands.keep(slice(0, n_keep))


def min_p(cands: Candidates, p: float) -> Candidates:
    """Keep tokens at least p times as likely as the most likely one (compared as logits)."""
    if p <= 0.0 or len(cands) == 0:
        return cands
    floor = np.float32(cands.logits[0]) + np.log(np.float32(p))  # float32, as llama.cpp
    return cands.keep(cands.logits >= floor)


def apply_temperature(cands: Candidates, temperature: float) -> Candidates:
    return Candidates(cands.ids, cands.logits / np.float32(temperature))


def truncate(penalized: np.ndarray, settings: SamplerSettings) -> Candidates:
    """The distribution the draw picks from: top-k, typical-p, top-p, min-p, then temperature."""
    return _truncate_ranked(top_k(penalized, settings.top_k), settings)


def _truncate_ranked(ranked: Candidates, settings: SamplerSettings) -> Candidates:
    """``truncate`` for logits already ranked by ``top_k`` (possibly with more than top_k kept)."""
    cands = ranked.keep(slice(0, settings.top_k)) if settings.top_k > 0 else ranked
    cands = typical_p(cands, settings.typical_p)
    cands = top_p(cands, settings.top_p)
    cands = min_p(cands, settings.min_p)
    return apply_temperature(cands, settings.temperature)


# --- the sampler -------------------------------------------------------------


class Sampler:
    """Draws tokens with a seeded generator; same seed, settings and logits give the same tokens.

    ``scanner``: what reads the whole vocabulary once per token (logit_scan.py);
    by default the one ``CHORD_SAMPLER`` names, else the compiled one."""

    def __init__(self, settings: SamplerSettings | SettingsSource | None = None, seed: int | None = None,
                 scanner: Scanner | None = None):
        self._source = as_settings_source(settings)
        self._scanner = scanner or default_scanner()
        if seed is None:
            seed = self._source.snapshot().seed
        self.seed: int = secrets.randbits(32) if seed is None else int(seed)
        self._rng = Mt19937Uniform(self.seed)  # llama.cpp's generator: a seed picks the same tokens

    def settings(self) -> SamplerSettings:
        return self._source.snapshot()

    def sample(self, logits: np.ndarray, history: list[int]) -> SampledToken:
        settings = self._source.snapshot()  # once per token: a change applies from the next one
        penalized = apply_penalties(logits, history, settings)
        if settings.temperature < MIN_TEMPERATURE:
            # a greedy pick still reports the model's own odds (T = 1)
            scan = self._scanner.scan(penalized, N_ALTERNATIVES, 1.0)
            token = scan.best
        else:
            # one scan serves both the chain's top-k and the reported alternatives
            k = settings.top_k
            scan = self._scanner.scan(penalized, max(k, N_ALTERNATIVES) if k > 0 else 0, settings.temperature)
            token = self._draw(_truncate_ranked(Candidates(scan.ids, scan.logits), settings))
        return _report(scan, penalized, token)

    def uniform(self) -> float:
        """The next number of the seeded stream, in [0, 1) (the speculative rule's draws)."""
        return self._rng.uniform()

    def _draw(self, cands: Candidates) -> int:
        """llama.cpp's dist sampler: float32 weights exp(l - max) in candidate
        order, summed in double; the first token whose running sum reaches
        uniform * total. It draws even for a single candidate, so the random
        stream stays aligned with llama.cpp's."""
        target = self._rng.uniform()
        if len(cands) == 1:
            return int(cands.ids[0])
        weights = np.exp((cands.logits - cands.logits.max()).astype(np.float32)).astype(np.float64)
        running = np.cumsum(weights)  # sequential in double, like the C++ loop
        position = int(np.searchsorted(running, running[-1] * target, side="left"))
        return int(cands.ids[min(position, len(cands) - 1)])


def report(penalized: np.ndarray, token: int, settings: SamplerSettings,
           scanner: Scanner | None = None) -> SampledToken:
    """``token``'s probability and the 5 most probable tokens, measured as ``Sampler.sample`` measures them."""
    greedy = settings.temperature < MIN_TEMPERATURE
    scan = (scanner or default_scanner()).scan(penalized, N_ALTERNATIVES, 1.0 if greedy else settings.temperature)
    return _report(scan, penalized, token)


def _report(scan: LogitScan, penalized: np.ndarray, token: int) -> SampledToken:
    """Probabilities over the whole vocabulary of the chosen token and of the scan's 5 best."""
    top = scan.ids[:N_ALTERNATIVES].tolist()
    probs = scan.probs(N_ALTERNATIVES)
    prob = probs[top.index(token)] if token in top else scan.prob(penalized[token])
    return SampledToken(token, prob, tuple(zip(top, probs)))
