"""The sampler chain against hand-computed distributions.

Logits are chosen as logs of round probabilities (0.4, 0.3, 0.2, 0.1 ...),
so the kept set and the renormalised probabilities can be worked out on
paper; the comments show that arithmetic.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from chord_core import logit_scan, sampling
from chord_core.errors import ChordError
from chord_core.sampling import (
    LiveSettings,
    Sampler,
    SamplerSettings,
    apply_penalties,
    min_p,
    top_k,
    top_p,
    truncate,
    typical_p,
)

# Only the step under test changes the distribution.
NEUTRAL = SamplerSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0)


def logits_of(*probs: float) -> np.ndarray:
    return np.log(np.array(probs, dtype=np.float64)).astype(np.float32)


def final(settings: SamplerSettings, logits: np.ndarray, history: list[int] | None = None) -> dict[int, float]:
    """The distribution the draw would pick from, as {token id: probability}."""
    cands = truncate(apply_penalties(logits, history or [], settings), settings)
    return dict(zip(cands.ids.tolist(), cands.probs().tolist()))


def assert_dist(actual: dict[int, float], expected: dict[int, float]) -> None:
    assert set(actual) == set(expected)
    for token, prob in expected.items():
        assert actual[token] == pytest.approx(prob, abs=1e-5), token


# --- settings -------------------------------------------------------------------


def test_defaults_are_llama_cpp_defaults():
    s = SamplerSettings()
    assert (s.temperature, s.top_k, s.top_p, s.min_p, s.typical_p) == (0.8, 40, 0.95, 0.05, 1.0)
    assert (s.repeat_penalty, s.repeat_last_n, s.presence_penalty, s.frequency_penalty) == (1.0, 64, 0.0, 0.0)
    assert s.seed is None and s.stop == ()


def test_to_dict_from_dict_round_trip():
    s = SamplerSettings(temperature=0.3, top_k=7, seed=42, max_tokens=100, stop=["\n\n", "User:"])
    data = s.to_dict()
    assert data["stop"] == ["\n\n", "User:"] and data["seed"] == 42
    assert SamplerSettings.from_dict(data) == s


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ChordError, match="top_q"):
        SamplerSettings.from_dict({"top_q": 0.5})


@pytest.mark.parametrize(
    "bad",
    [{"top_p": 1.5}, {"min_p": -0.1}, {"top_k": 2.5}, {"repeat_penalty": 0.0},
     {"repeat_last_n": -2}, {"seed": -1}, {"max_tokens": 0}, {"stop": [""]}, {"temperature": "hot"}],
)
def test_invalid_values_are_chord_errors_naming_the_field(bad):
    with pytest.raises(ChordError, match=next(iter(bad))):
        SamplerSettings(**bad)


# --- each step ------------------------------------------------------------------


def test_penalties_follow_llama_cpp():
    logits = np.array([2.0, -1.0, 0.5, 3.0], dtype=np.float32)
    settings = SamplerSettings(repeat_penalty=2.0, frequency_penalty=0.5, presence_penalty=0.25)
    out = apply_penalties(logits, [0, 1, 1], settings)
    # token 0 seen once, positive: 2.0 / 2 - (1 * 0.5 + 0.25) = 0.25
    # token 1 seen twice, negative: -1.0 * 2 - (2 * 0.5 + 0.25) = -3.25
    np.testing.assert_allclose(out, [0.25, -3.25, 0.5, 3.0])
    np.testing.assert_array_equal(logits, [2.0, -1.0, 0.5, 3.0])  # the caller's logits are untouched


def test_penalties_only_look_back_repeat_last_n_tokens():
    logits = np.array([2.0, 2.0, 2.0], dtype=np.float32)
    history = [0, 0, 1]
    window_1 = apply_penalties(logits, history, SamplerSettings(repeat_penalty=2.0, repeat_last_n=1))
    np.testing.assert_allclose(window_1, [2.0, 1.0, 2.0])
    off = apply_penalties(logits, history, SamplerSettings(repeat_penalty=2.0, repeat_last_n=0))
    np.testing.assert_allclose(off, [2.0, 2.0, 2.0])
    everything = apply_penalties(logits, history, SamplerSettings(repeat_penalty=2.0, repeat_last_n=-1))
    np.testing.assert_allclose(everything, [1.0, 1.0, 2.0])


def test_top_k_keeps_the_k_highest_sorted():
    cands = top_k(np.array([0.5, 2.0, -1.0, 1.0, 0.0], dtype=np.float32), 3)
    assert cands.ids.tolist() == [1, 3, 0]
    assert cands.logits.tolist() == [2.0, 1.0, 0.5]


def test_top_k_matches_a_full_sort_on_a_large_vocabulary():
    logits = np.random.default_rng(3).standard_normal(262_144).astype(np.float32)
    cands = top_k(logits, 40)
    assert cands.ids.tolist() == np.argsort(-logits, kind="stable")[:40].tolist()


def test_typical_p_keeps_tokens_nearest_the_entropy():
    # p = .4 .3 .2 .1; H = -(.4 ln .4 + .3 ln .3 + .2 ln .2 + .1 ln .1) = 1.27985
    # |-ln p - H| = .3635 .0761 .3296 1.0227 -> order: token 1, 2, 0, 3
    # running mass .3, .5 > .45 -> keep {1, 2}: the most likely token is dropped
    cands = typical_p(top_k(logits_of(0.4, 0.3, 0.2, 0.1), 0), 0.45)
    assert cands.ids.tolist() == [1, 2]
    np.testing.assert_allclose(cands.probs(), [0.3 / 0.5, 0.2 / 0.5], atol=1e-6)


def test_typical_p_in_the_chain():
    # same order; running mass .3, .5, .9 > .7 -> keep {0, 1, 2}
    assert_dist(final(NEUTRAL.replace(typical_p=0.7), logits_of(0.4, 0.3, 0.2, 0.1)),
                {0: 0.4 / 0.9, 1: 0.3 / 0.9, 2: 0.2 / 0.9})


def test_top_p_keeps_the_smallest_set_reaching_p():
    # running mass .5, .75 >= .7 -> keep 2
    cands = top_p(top_k(logits_of(0.5, 0.25, 0.15, 0.10), 0), 0.7)
    assert cands.ids.tolist() == [0, 1]
    assert_dist(final(NEUTRAL.replace(top_p=0.8), logits_of(0.5, 0.25, 0.15, 0.10)),
                {0: 0.5 / 0.9, 1: 0.25 / 0.9, 2: 0.15 / 0.9})  # .5, .75, .9 >= .8


def test_boundaries_top_p_stops_on_reaching_p_typical_on_exceeding_it():
    # four equal logits: each p is exactly .25, running mass .25, .5, .75, 1
    flat = np.zeros(4, dtype=np.float32)
    assert len(top_p(top_k(flat, 0), 0.5)) == 2  # llama.cpp: cum >= p
    assert len(typical_p(top_k(flat, 0), 0.5)) == 3  # llama.cpp: cum > p


def test_min_p_keeps_tokens_at_least_p_times_the_best():
    # floor .4 * .5 = .2: keeps .5 and .25
    cands = min_p(top_k(logits_of(0.5, 0.25, 0.15, 0.10), 0), 0.4)
    assert cands.ids.tolist() == [0, 1]
    # floor .25 * .5 = .125: keeps .5 .25 .15
    assert_dist(final(NEUTRAL.replace(min_p=0.25), logits_of(0.5, 0.25, 0.15, 0.10)),
                {0: 0.5 / 0.9, 1: 0.25 / 0.9, 2: 0.15 / 0.9})


def test_temperature_scales_what_survives():
    # nothing truncated; at T = 0.5 probabilities go as p^2: .16 .09 .04 .01 (sum .30)
    assert_dist(final(NEUTRAL.replace(temperature=0.5), logits_of(0.4, 0.3, 0.2, 0.1)),
                {0: 0.16 / 0.30, 1: 0.09 / 0.30, 2: 0.04 / 0.30, 3: 0.01 / 0.30})


# --- order of the chain ---------------------------------------------------------


def test_top_p_renormalises_after_top_k():
    # top-k 2 leaves .4 .3 -> 4/7 = .571 >= .55 alone; top-p on the full vocabulary would keep two
    assert_dist(final(NEUTRAL.replace(top_k=2, top_p=0.55), logits_of(0.4, 0.3, 0.2, 0.1)), {0: 1.0})


def test_min_p_comes_before_temperature():
    # min-p .4 on .5 .25 .15 .10 keeps {0, 1}; at T = 2 those go as sqrt(p): .7071, .5
    # (after temperature, .15 would be .548 of the best and survive)
    assert_dist(final(NEUTRAL.replace(min_p=0.4, temperature=2.0), logits_of(0.5, 0.25, 0.15, 0.10)),
                {0: math.sqrt(0.5) / (math.sqrt(0.5) + 0.5), 1: 0.5 / (math.sqrt(0.5) + 0.5)})


def test_penalties_come_before_top_k():
    # token 0 (.4) seen before; penalty 4 turns ln .4 = -.916 into -3.665 (p ~ .026)
    # so top-k 2 keeps tokens 1 and 2: .3 and .2 -> .6 .4
    logits = logits_of(0.4, 0.3, 0.2, 0.1)
    assert_dist(final(NEUTRAL.replace(top_k=2, repeat_penalty=4.0), logits, history=[0]), {1: 0.6, 2: 0.4})


def test_default_chain_on_eight_logits():
    logits = np.array([3.0, 2.5, 2.0, 1.0, 0.0, -1.0, -3.0, -6.0], dtype=np.float32)
    # T=1 probabilities: e^(l-3) = 1, .6065, .3679, .1353, .0498, .0183, .0025, .0001 (sum 2.18045)
    # -> .4586 .2782 .1687 .0621 .0228 ...; top-p .95 reaches .9676 at token 3 -> keep 0..3
    # min-p .05: floor logit 3 + ln .05 = .0043 -> 0..3 still kept
    # T = .8 on 3, 2.5, 2, 1: weights e^0, e^-.625, e^-1.25, e^-2.5
    weights = [1.0, math.exp(-0.625), math.exp(-1.25), math.exp(-2.5)]
    total = sum(weights)
    assert_dist(final(SamplerSettings(), logits), {i: w / total for i, w in enumerate(weights)})


# --- the draw and what it reports ---------------------------------------------------


def test_reported_probabilities_are_after_penalties_and_temperature_before_truncation():
    logits = np.array([3.0, 2.5, 2.0, 1.0, 0.0, -1.0, -3.0, -6.0], dtype=np.float32)
    settings = SamplerSettings(temperature=0.5, top_k=1, repeat_penalty=2.0)
    token = Sampler(settings, seed=1).sample(logits, history=[0])
    # penalized: 1.5 2.5 2 1 0 -1 -3 -6; top-k 1 forces token 1; at T = .5 the whole
    # vocabulary weighs e^(2l): the report is over all eight, not the one kept
    weights = np.exp(2 * np.array([1.5, 2.5, 2.0, 1.0, 0.0, -1.0, -3.0, -6.0]))
    probs = weights / weights.sum()
    assert token.id == 1
    assert token.prob == pytest.approx(probs[1], rel=1e-5)
    assert [i for i, _ in token.alternatives] == [1, 2, 0, 3, 4]
    for i, p in token.alternatives:
        assert p == pytest.approx(probs[i], rel=1e-5)


def test_greedy_at_temperature_zero_takes_argmax_of_penalized_logits():
    logits = np.array([1.0, 3.0, 2.0], dtype=np.float32)
    sampler = Sampler(SamplerSettings(temperature=0.0, repeat_penalty=2.0), seed=0)
    # penalized: 1.0, 1.5, 2.0 -> token 2, every time
    picks = {sampler.sample(logits, history=[1]).id for _ in range(20)}
    assert picks == {2}
    token = sampler.sample(logits, history=[1])
    # a greedy pick reports the model's own odds (T = 1) after penalties
    assert token.prob == pytest.approx(math.exp(2.0) / (math.exp(1.0) + math.exp(1.5) + math.exp(2.0)), rel=1e-5)
    assert Sampler(SamplerSettings(temperature=-1.0), seed=0).sample(logits, []).id == 1


def test_draws_follow_the_distribution():
    sampler = Sampler(NEUTRAL, seed=123)
    logits = logits_of(0.6, 0.3, 0.1)
    counts = np.bincount([sampler.sample(logits, []).id for _ in range(4000)], minlength=3) / 4000
    np.testing.assert_allclose(counts, [0.6, 0.3, 0.1], atol=0.03)


def test_same_seed_and_settings_reproduce_exactly():
    logits = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    settings = SamplerSettings(temperature=1.5, top_k=100, top_p=0.99, min_p=0.0)

    def run(seed: int) -> list[int]:
        sampler = Sampler(settings, seed=seed)
        history: list[int] = []
        for _ in range(50):
            history.append(sampler.sample(logits, history).id)
        return history

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_seed_comes_from_settings_when_not_given():
    logits = np.random.default_rng(0).standard_normal(500).astype(np.float32)
    settings = SamplerSettings(temperature=2.0, top_k=0, top_p=1.0, min_p=0.0, seed=99)
    a, b = Sampler(settings), Sampler(settings)
    assert a.seed == b.seed == 99
    assert [a.sample(logits, []).id for _ in range(30)] == [b.sample(logits, []).id for _ in range(30)]
    assert Sampler(SamplerSettings()).seed is not None


def test_top_k_never_fully_sorts_the_vocabulary(monkeypatch):
    sorted_sizes: list[int] = []

    class WatchedNumpy:
        def __getattr__(self, name):
            return getattr(np, name)

        def lexsort(self, keys, *args, **kwargs):
            sorted_sizes.append(len(keys[0]))
            return np.lexsort(keys, *args, **kwargs)

        def argsort(self, a, *args, **kwargs):
            sorted_sizes.append(len(a))
            return np.argsort(a, *args, **kwargs)

        def sort(self, a, *args, **kwargs):
            sorted_sizes.append(len(a))
            return np.sort(a, *args, **kwargs)

    monkeypatch.setattr(sampling, "np", WatchedNumpy())
    monkeypatch.setattr(logit_scan, "np", WatchedNumpy())  # the reference scan ranks there
    logits = np.random.default_rng(1).standard_normal(262_144).astype(np.float32)
    Sampler(SamplerSettings(typical_p=0.9), seed=0, scanner=logit_scan.NumpyScan()).sample(logits, list(range(64)))
    assert sorted_sizes and max(sorted_sizes) <= 40  # top_k


# --- live settings ------------------------------------------------------------------


def test_live_settings_change_applies_at_the_next_sample():
    live = LiveSettings(SamplerSettings(temperature=0.0))
    sampler = Sampler(live, seed=0)
    logits = np.array([1.0, 5.0, 2.0], dtype=np.float32)
    assert sampler.sample(logits, history=[1]).id == 1

    # the UI thread turns on a repeat penalty between two tokens: 5 / 10 = .5 < 2
    ui = threading.Thread(target=live.update, kwargs={"repeat_penalty": 10.0})
    ui.start()
    ui.join()
    assert sampler.sample(logits, history=[1]).id == 2


def test_live_settings_update_is_all_or_nothing():
    live = LiveSettings()
    before = live.snapshot()
    with pytest.raises(ChordError):
        live.update(temperature=0.1, top_p=2.0)
    with pytest.raises(ChordError, match="warmth"):
        live.update(warmth=1.0)
    assert live.snapshot() == before
    assert live.update(top_k=5).top_k == 5
    assert before.top_k == 40  # a snapshot taken earlier does not change under the reader


@pytest.mark.parametrize("peak", [0.0, 8.0, 30.0])
@pytest.mark.parametrize("k", [1, 5, 40, 500])
def test_top_k_on_a_large_vocabulary_keeps_exactly_the_k_best(peak, k):
    """The threshold pre-pass must not change which tokens top-k keeps,
    whether it applies (a few peaked logits) or falls back (a flat vocabulary)."""
    from chord_core.sampling import top_k

    rng = np.random.default_rng(int(peak) * 1000 + k)
    logits = rng.standard_normal(262_144).astype(np.float32) * 2.5
    logits[rng.integers(0, logits.size, 50)] += np.float32(peak)
    want = set(np.argsort(-logits, kind="stable")[:k].tolist())
    got = top_k(logits, k)
    assert set(got.ids.tolist()) == want
    assert np.all(np.diff(got.logits) <= 0)
