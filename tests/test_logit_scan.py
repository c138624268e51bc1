"""The compiled logit scan against the NumPy reference, on every instruction
set this CPU runs: the same ranking, peak and greedy pick exactly, log_total
within 1e-6 (so reported probabilities agree to 1e-6 relative), and the
same tokens from a seeded sampler."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from chord_core.errors import ChordError
from chord_core.logit_scan import CompiledScan, NumpyScan, make_scanner, rank
from chord_core.sampling import Sampler, SamplerSettings

_sampling = pytest.importorskip("chord_core._sampling")
# the reference's float32 arithmetic overflows on the huge logits, as it always has
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")

ISAS = _sampling.isas()
VOCAB = 49_152  # SmolLM2's
TOLERANCE = 1e-6


@pytest.fixture(params=ISAS)
def compiled(request):
    before = _sampling.isa()
    _sampling.set_isa(request.param)
    yield CompiledScan(_sampling)
    _sampling.set_isa(before)


def _logits(kind: str, n: int = VOCAB) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    normal = rng.standard_normal(n).astype(np.float32)
    if kind == "model-like":  # a few peaked tokens over a broad floor, as a model's
        x = normal * np.float32(2.5)
        x[rng.integers(0, n, 30)] += np.float32(14.0)
        return x
    if kind == "rounded":  # many exact ties, at and around every rank
        return np.round(normal * 3).astype(np.float32)
    if kind == "all-equal":
        return np.full(n, 1.5, dtype=np.float32)
    if kind == "ascending":  # every logit beats the ones before: the worst case for the best-n heap
        return np.linspace(-5, 5, n, dtype=np.float32)
    if kind == "descending":
        return np.linspace(5, -5, n, dtype=np.float32)
    if kind == "minus-inf":  # tokens masked out, one left
        x = np.full(n, -np.inf, dtype=np.float32)
        x[n // 3] = 2.0
        return x
    if kind == "some-minus-inf":
        x = normal.copy()
        x[rng.integers(0, n, n // 2)] = -np.inf
        return x
    if kind == "huge":  # differences overflow float32 to -inf
        x = np.clip(normal, -3.0, 3.0) * np.float32(1e38)
        x[7] = np.float32(3.4e38)
        return x
    if kind == "signed-zeros":  # -0.0 and 0.0 tie
        x = np.where(normal > 0, np.float32(0.0), np.float32(-0.0)).astype(np.float32)
        x[::97] = -1.0
        return x
    if kind == "odd-size":
        return normal[: n - 13] * np.float32(4.0)
    raise AssertionError(kind)


KINDS = ["model-like", "rounded", "all-equal", "ascending", "descending", "minus-inf", "some-minus-inf", "huge",
         "signed-zeros", "odd-size"]


def _assert_same_scan(got, want):
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.logits, want.logits)
    assert got.best == want.best
    assert got.peak == want.peak and got.inv_t == want.inv_t
    assert got.log_total == pytest.approx(want.log_total, rel=0, abs=TOLERANCE)
    n = min(len(got.ids), 5)
    np.testing.assert_allclose(got.probs(n), want.probs(n), rtol=TOLERANCE, atol=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 5, 40])
@pytest.mark.parametrize("temperature", [1.0, 0.8, 1e-4, 3.0])
def test_compiled_scan_matches_the_reference(compiled, kind, n, temperature):
    logits = _logits(kind)
    _assert_same_scan(compiled.scan(logits, n, temperature), NumpyScan().scan(logits, n, temperature))


@pytest.mark.parametrize("kind", ["model-like", "rounded", "ascending"])
@pytest.mark.parametrize("n", [0, 1024, 1025, 5000, VOCAB, VOCAB + 1])  # 1024: the largest the C heap ranks
def test_compiled_scan_ranks_past_the_candidate_superset_and_the_whole_vocabulary(compiled, kind, n):
    """n beyond the few tokens near the peak; 0 and more than the vocabulary rank every token
    (past HEAP_MAX the ranking is NumPy's, the sum still the scan's)."""
    logits = _logits(kind)
    got, want = compiled.scan(logits, n, 0.8), NumpyScan().scan(logits, n, 0.8)
    assert len(got.ids) == (VOCAB if n in (0, VOCAB + 1) else n)
    _assert_same_scan(got, want)


@pytest.mark.parametrize("size", [1, 2, 15, 16, 17, 31, 33, 1000])
def test_compiled_scan_handles_every_tail_length(compiled, size):
    logits = np.random.default_rng(size).standard_normal(size).astype(np.float32)
    for n in (1, size):
        _assert_same_scan(compiled.scan(logits, n, 0.7), NumpyScan().scan(logits, n, 0.7))


@pytest.mark.parametrize("poison", [np.nan, np.inf])
@pytest.mark.parametrize("where", [[11, 999], [0, 40_000]])  # after the first n, and among them
def test_nan_or_infinite_logits_get_the_references_answer(compiled, poison, where):
    logits = _logits("model-like")
    logits[where] = poison
    got, want = compiled.scan(logits, 5, 1.0), NumpyScan().scan(logits, 5, 1.0)
    np.testing.assert_array_equal(got.ids, want.ids)
    assert got.best == want.best == where[0]
    assert np.isnan(got.log_total) and np.isnan(want.log_total)


def test_the_reference_keeps_the_lowest_ids_of_a_tie_at_the_k_th_place():
    # a partition alone keeps any of the tied zeros (NumPy's kept 7 here)
    ids, values = rank(np.array([1, 0, 0, 0, 0, 0, 0, 0, 2], dtype=np.float32), 3)
    assert ids.tolist() == [8, 0, 1]
    big = np.zeros(100_000, dtype=np.float32)
    big[[500, 90_000]] = 1.0
    assert rank(big, 5)[0].tolist() == [500, 90_000, 0, 1, 2]


SETTINGS = {
    "greedy": SamplerSettings(temperature=0.0),
    "defaults": SamplerSettings(),
    "hot, whole vocabulary": SamplerSettings(temperature=1.5, top_k=0, top_p=0.9, min_p=0.0),
    "typical, top-k 1": SamplerSettings(top_k=1, typical_p=0.9),
    "penalties": SamplerSettings(temperature=0.9, repeat_penalty=1.3, frequency_penalty=0.2, presence_penalty=0.1),
}


@pytest.mark.parametrize("name", SETTINGS)
def test_a_seeded_sampler_picks_the_same_tokens_on_either_scanner(compiled, name):
    settings = SETTINGS[name].replace(seed=1234)
    rng = np.random.default_rng(7)
    steps = [(_logits("model-like") + rng.standard_normal(VOCAB).astype(np.float32), list(rng.integers(0, 500, 64)))
             for _ in range(12)]
    steps.append((_logits("rounded"), []))  # ties at the top and at the k-th place
    reference, fast = Sampler(settings, scanner=NumpyScan()), Sampler(settings, scanner=compiled)
    for logits, history in steps:
        want, got = reference.sample(logits, history), fast.sample(logits, history)
        assert got.id == want.id
        assert [i for i, _ in got.alternatives] == [i for i, _ in want.alternatives]
        np.testing.assert_allclose([got.prob] + [p for _, p in got.alternatives],
                                   [want.prob] + [p for _, p in want.alternatives], rtol=TOLERANCE, atol=0)
    assert fast.uniform() == reference.uniform()  # the seeded stream drew alike


def test_chord_sampler_names_the_scanner_and_a_bad_name_is_one_line():
    assert make_scanner("numpy").name == "numpy"
    assert make_scanner("compiled").name == "compiled"
    assert make_scanner(None).name == "compiled"  # the compiled one when it imports
    with pytest.raises(ChordError, match=r"^CHORD_SAMPLER='fast' is not a scanner \(choose from numpy, compiled\)$"):
        make_scanner("fast")


def _scan_isa_in_a_fresh_process(isa: str) -> subprocess.CompletedProcess:
    code = "from chord_core.logit_scan import default_scanner as d; s = d(); print(s.name, s.isa)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, CHORD_ISA=isa, CHORD_SAMPLER="compiled"))


@pytest.mark.parametrize("isa", ISAS)
def test_chord_isa_forces_each_path_of_the_compiled_scan(isa):
    done = _scan_isa_in_a_fresh_process(isa)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["compiled", isa]


def test_chord_isa_naming_an_unknown_path_refuses_the_compiled_scan_in_one_line():
    done = _scan_isa_in_a_fresh_process("sse9")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "CHORD_SAMPLER=compiled: the compiled scan is unavailable (CHORD_ISA=sse9: unknown scan path" in last
