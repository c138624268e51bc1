"""The compiled flash attention kernel (chord_core._attention) against the
NumPy reference (backend/attention_ref.py), and the reference against a
plain per-query loop in float64: every ISA path this CPU has, F32 and F16
caches, GQA groups, windows, soft-capping, key offsets and thread counts."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

from chord_core.backend.attention_ref import attend_reference

_attention = pytest.importorskip("chord_core._attention", reason="compiled attention kernel not built")

ISAS = _attention.isas()


@pytest.fixture
def isa(request):
    """Run the test on ISA ``request.param``, restoring the default after."""
    before = _attention.isa()
    _attention.set_isa(request.param)
    yield request.param
    _attention.set_isa(before)


def _inputs(T, nh, nkv, dk, dv, start, cap, kv_type, seed=0):
    rng = np.random.default_rng(seed)
    # scores of spread ~2: a softmax neither flat nor one-hot
    q = (rng.standard_normal((T, nh, dk)) * (2.0 / np.sqrt(dk))).astype(np.float32)
    k = rng.standard_normal((nkv, cap, dk)).astype(kv_type)
    v = rng.standard_normal((nkv, cap, dv)).astype(kv_type)
    return q, k, v


def _reference(q, k, v, start, lo, window, softcap):
    out = np.empty((q.shape[0], q.shape[1] * v.shape[2]), np.float32)
    attend_reference(q, k, v, out, start, lo, start + q.shape[0], window, softcap)
    return out


def _kernel(q, k, v, start, lo, window, softcap, threads):
    out = np.full((q.shape[0], q.shape[1] * v.shape[2]), np.nan, np.float32)
    _attention.attend(q, k, v, out, start, lo, start + q.shape[0], window, softcap, threads)
    return out


def _relative_error(out, ref):
    return float(np.abs(out - ref).max() / np.abs(ref).max())


# (T, n_head, n_head_kv, head_dim, start, lo, window, softcap, threads)
CASES = [
    (1, 4, 1, 256, 2047, 0, 0, 0.0, 1),  # Gemma 3 270M decode after 2047 tokens
    (1, 4, 1, 256, 2047, 0, 0, 0.0, 2),  # ... keys split over threads
    (1, 9, 3, 64, 4095, 0, 0, 0.0, 3),  # SmolLM2 decode, three kv heads, split keys
    (2, 9, 3, 64, 30, 0, 0, 0.0, 2),
    (7, 8, 2, 128, 100, 0, 0, 0.0, 3),  # GQA 4
    (7, 4, 4, 64, 0, 0, 0, 0.0, 1),  # GQA 1, first chunk
    (512, 4, 1, 256, 0, 0, 0, 0.0, 2),  # Gemma prefill
    (512, 9, 3, 64, 0, 0, 0, 0.0, 3),  # SmolLM2 prefill
    (512, 8, 8, 128, 512, 0, 0, 0.0, 2),  # a second chunk
    (7, 8, 2, 128, 300, 250, 0, 0.0, 2),  # lo > 0
    (512, 4, 1, 256, 600, 89, 512, 0.0, 3),  # sliding window smaller than the chunk
    (7, 4, 1, 256, 20, 0, 512, 0.0, 2),  # window larger than what is cached
    (1, 4, 1, 256, 3000, 2489, 512, 0.0, 2),  # windowed decode, lo at the window's edge
    (7, 16, 8, 256, 40, 0, 16, 50.0, 2),  # Gemma 2: soft-capping and a window
    (2, 9, 3, 64, 700, 0, 0, 30.0, 1),
    (7, 6, 2, 100, 33, 5, 0, 0.0, 3),  # a head size that is no multiple of the vector width
    (1, 6, 2, 100, 1500, 0, 0, 0.0, 2),
]


def _case_id(c):
    T, nh, nkv, d, start, lo, window, softcap, threads = c
    return f"T{T}-h{nh}/{nkv}-d{d}-at{start}-lo{lo}-w{window}-cap{softcap:g}-t{threads}"


@pytest.mark.parametrize("kv_type", [np.float32, np.float16], ids=["f32", "f16"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("isa", ISAS, indirect=True)
def test_kernel_matches_reference(isa, case, kv_type):
    T, nh, nkv, d, start, lo, window, softcap, threads = case
    q, k, v = _inputs(T, nh, nkv, d, d, start, start + T + 3, kv_type)
    ref = _reference(q, k, v, start, lo, window, softcap)
    out = _kernel(q, k, v, start, lo, window, softcap, threads)
    # F16 caches: the reference reads the same F16 values, so the bar is as tight
    assert _relative_error(out, ref) <= 1e-5


@pytest.mark.parametrize("kv_type", [np.float32, np.float16], ids=["f32", "f16"])
@pytest.mark.parametrize("isa", ISAS, indirect=True)
def test_value_head_size_may_differ_from_key_head_size(isa, kv_type):
    q, k, v = _inputs(9, 8, 2, 72, 36, 40, 60, kv_type)
    ref = _reference(q, k, v, 40, 3, 0, 0.0)
    assert _relative_error(_kernel(q, k, v, 40, 3, 0, 0.0, 2), ref) <= 1e-5


@pytest.mark.parametrize("isa", ISAS, indirect=True)
def test_kernel_is_the_same_for_any_thread_count(isa):
    q, k, v = _inputs(300, 8, 2, 64, 64, 1000, 1400, np.float16)
    one = _kernel(q, k, v, 1000, 0, 0, 0.0, 1)
    for threads in (2, 3, 8):
        assert _relative_error(_kernel(q, k, v, 1000, 0, 0, 0.0, threads), one) <= 1e-6


@pytest.mark.parametrize("isa", ISAS, indirect=True)
def test_float16_values_are_read_exactly(isa):
    """One key: the output is its value row, so every finite float16 must
    come out as numpy's own float32 conversion (normals, subnormals, zeros)."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    halves = bits.view(np.float16)
    halves = halves[np.isfinite(halves)]
    v = halves.reshape(1, 1, -1)
    k = np.ones((1, 1, 8), np.float16)
    q = np.ones((1, 1, 8), np.float32)
    out = _kernel(q, k, v, 0, 0, 0, 0.0, 1)
    np.testing.assert_array_equal(out[0], halves.astype(np.float32))


def _naive(q, k, v, start, lo, window, softcap):
    """One query and head at a time, in float64: the definition."""
    T, nh, _ = q.shape
    nkv, dv = k.shape[0], v.shape[2]
    out = np.zeros((T, nh, dv))
    for i in range(T):
        pos = start + i
        keys = [p for p in range(lo, pos + 1) if not window or pos - p < window]
        for h in range(nh):
            kv = h // (nh // nkv)
            s = np.array([q[i, h].astype(np.float64) @ k[kv, p].astype(np.float64) for p in keys])
            if softcap:
                s = np.tanh(s / softcap) * softcap
            w = np.exp(s - s.max())
            out[i, h] = (w / w.sum()) @ v[kv, keys].astype(np.float64)
    return out.reshape(T, nh * dv)


@pytest.mark.parametrize("case", [(5, 6, 2, 16, 9, 3, 0, 0.0), (6, 4, 1, 8, 20, 14, 4, 0.0),
                                  (3, 4, 4, 8, 0, 0, 2, 5.0), (1, 3, 1, 8, 12, 8, 5, 0.0)])
def test_reference_matches_the_definition(case):
    T, nh, nkv, d, start, lo, window, softcap = case
    q, k, v = _inputs(T, nh, nkv, d, d, start, start + T, np.float16, seed=3)
    ref = _reference(q, k, v, start, lo, window, softcap)
    np.testing.assert_allclose(ref, _naive(q, k, v, start, lo, window, softcap), rtol=1e-4, atol=1e-5)


def _good_args():
    q, k, v = _inputs(3, 4, 2, 16, 16, 5, 10, np.float32)
    out = np.zeros((3, 4 * 16), np.float32)
    return dict(q=q, k=k, v=v, out=out, start=5, lo=0, end=8, window=0, softcap=0.0, threads=1)


@pytest.mark.parametrize("change, named", [
    (dict(q=np.zeros((3, 4, 16), np.float64)), "q must be"),
    (dict(q=np.zeros((3, 4, 32), np.float32)[:, :, ::2]), "q must be"),
    (dict(k=np.zeros((2, 10, 16), np.float32), v=np.zeros((2, 10, 16), np.float16)), "same dtype"),
    (dict(k=np.zeros((3, 10, 16), np.float32), v=np.zeros((3, 10, 16), np.float32)), "multiple of k's n_head_kv"),
    (dict(k=np.zeros((2, 10, 8), np.float32)), "head size"),
    (dict(out=np.zeros((3, 60), np.float32)), "out must be"),
    (dict(out=np.zeros((3, 64), np.float32)[:, :64].T.copy().T), "out must be"),
    (dict(end=9), "end == start + T"),
    (dict(lo=6), "lo <= start"),
    (dict(start=8, end=11), "capacity"),
    (dict(window=-1), "window"),
    (dict(softcap=float("nan")), "softcap"),
    (dict(threads=0), "threads"),
])
def test_bad_arguments_get_one_line_errors(change, named):
    args = _good_args()
    args.update(change)
    with pytest.raises(ValueError, match=re.escape(named)) as e:
        _attention.attend(**args)
    assert "\n" not in str(e.value)


def test_read_only_out_is_refused():
    args = _good_args()
    args["out"].setflags(write=False)
    with pytest.raises(ValueError, match="out must be a writable array"):
        _attention.attend(**args)


def test_set_isa_refuses_what_this_cpu_cannot_run():
    with pytest.raises(ValueError, match="'nonsense'"):
        _attention.set_isa("nonsense")
    missing = [name for name in ("neon", "avx2", "avx512") if name not in ISAS]
    for name in missing:
        with pytest.raises(ValueError, match="cannot run on this CPU"):
            _attention.set_isa(name)
    assert ISAS[-1] == "portable"


def _import_with_isa(name):
    code = "import chord_core._attention as a; print(a.isa())"
    env = dict(os.environ, CHORD_ISA=name)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("name", ISAS)
def test_chord_isa_environment_variable_forces_the_path(name):
    run = _import_with_isa(name)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == name


def test_chord_isa_naming_an_unknown_path_fails_the_import():
    run = _import_with_isa("sse9")
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: CHORD_ISA=sse9: unknown ISA 'sse9'")
    assert "portable" in last


def test_concurrent_callers_each_get_their_own_result():
    """The pool serves one job at a time; callers on several Python threads
    (the GIL is released) must neither mix nor lose work."""
    jobs = [_inputs(64, 4, 1, 64, 64, 100 * s, 100 * s + 64, np.float32, seed=s) for s in range(4)]
    expected = [_reference(q, k, v, 100 * s, 0, 0, 0.0) for s, (q, k, v) in enumerate(jobs)]
    errors = [None] * len(jobs)

    def worker(s):
        q, k, v = jobs[s]
        errors[s] = max(_relative_error(_kernel(q, k, v, 100 * s, 0, 0, 0.0, 2), expected[s]) for _ in range(20))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(errors) <= 1e-5


def _thread_count():
    return len(os.listdir("/proc/self/task"))


def _attend_in_child(conn, q, k, v):
    before = _thread_count()
    out = _kernel(q, k, v, 0, 0, 0, 0.0, 2)
    conn.send((out, _thread_count() - before))


_ONE_POOL = """
import os
import numpy as np
import chord_core._attention as A, chord_core._kernels as K
threads = lambda: len(os.listdir("/proc/self/task"))
before = threads()
rng = np.random.default_rng(0)
q = rng.standard_normal((64, 4, 64), dtype=np.float32)
k, v = (rng.standard_normal((1, 64, 64), dtype=np.float32) for _ in range(2))
A.attend(q, k, v, np.empty((64, 256), np.float32), 0, 0, 64, 0, 0.0, 2)
w = rng.standard_normal((256, 1024), dtype=np.float32)
K.matmul(w, 0, 256, 1024, rng.standard_normal((1, 1024), dtype=np.float32), np.empty((1, 256), np.float32), 2)
print(threads() - before)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_attention_runs_on_the_matrix_kernels_worker_threads():
    """One pool for the engine: a 2-thread attention call then a 2-thread
    matrix product start one worker thread in a fresh process, not one each
    (two pools' spinning workers fought over the same cores in a decode step)."""
    run = subprocess.run([sys.executable, "-c", _ONE_POOL], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "1"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs fork and Linux's /proc")
def test_a_forked_child_starts_its_own_worker_thread():
    q, k, v = _inputs(64, 4, 1, 64, 64, 0, 64, np.float32)
    _kernel(q, k, v, 0, 0, 0, 0.0, 2)  # the parent's worker exists now
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_attend_in_child, args=(child, q, k, v))
    p.start()
    # a child waiting on its parent's (absent) workers would never answer
    assert parent.poll(120), "the forked child hung in attend"
    out, new_threads = parent.recv()
    p.join()
    assert _relative_error(out, _reference(q, k, v, 0, 0, 0, 0.0)) <= 1e-5
    assert new_threads == 1
