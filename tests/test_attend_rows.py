"""attend_rows: a batched decode step's attention in one call. Each row
writes its key and value into its own cache and attends over it, and gets
the bits a call of its own (attend, T = 1) gives, on every ISA path, F32
and F16 caches, windows, key splits, soft-capping."""

from __future__ import annotations

import numpy as np
import pytest

_attention = pytest.importorskip("chord_core._attention", reason="compiled attention kernel not built")


@pytest.fixture(params=_attention.isas())
def isa(request):
    before = _attention.isa()
    _attention.set_isa(request.param)
    yield request.param
    _attention.set_isa(before)


def _rows(B, nh, nkv, d, starts, caps, kv_type, seed=0):
    """q, k_new, v_new as row views of one wide array (as forward's qkv), and B caches."""
    rng = np.random.default_rng(seed)
    qkv = rng.standard_normal((B, (nh + 2 * nkv) * d)).astype(np.float32)
    qkv[:, :nh * d] *= 2.0 / np.sqrt(d)
    q = qkv[:, :nh * d].reshape(B, nh, d)
    k_new = qkv[:, nh * d:(nh + nkv) * d].reshape(B, nkv, d)
    v_new = qkv[:, (nh + nkv) * d:].reshape(B, nkv, d)
    ks = [rng.standard_normal((nkv, cap, d)).astype(kv_type) for cap in caps]
    vs = [rng.standard_normal((nkv, cap, d)).astype(kv_type) for cap in caps]
    return q, k_new, v_new, ks, vs


def _alone(q, k_new, v_new, ks, vs, starts, window, softcap, threads):
    """Each row as a decode step without attend_rows: NumPy writes, one attend call."""
    outs = []
    for b, s in enumerate(starts):
        ks[b][:, s] = k_new[b]
        vs[b][:, s] = v_new[b]
        out = np.empty((1, q.shape[1] * v_new.shape[2]), np.float32)
        lo = max(0, s - window + 1) if window else 0
        _attention.attend(np.ascontiguousarray(q[b:b + 1]), ks[b], vs[b], out, s, lo, s + 1, window, softcap, threads)
        outs.append(out)
    return np.concatenate(outs)


# (n_head, n_head_kv, head size, starts, window, softcap): one kv head and 1000+
# keys (a million multiply-adds) split the keys over the threads; a window cuts the oldest keys
CASES = [
    (9, 3, 64, [0, 95, 17, 300], 0, 0.0),
    (8, 1, 64, [1100, 3, 1500], 0, 0.0),
    (4, 2, 16, [5, 40, 200], 8, 0.0),
    (8, 4, 16, [12, 600], 0, 30.0),
]


@pytest.mark.parametrize("kv_type", [np.float32, np.float16])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_each_row_gets_the_bits_of_its_own_attend_call(isa, case, kv_type, threads):
    nh, nkv, d, starts, window, softcap = case
    caps = [s + 1 + 7 * b for b, s in enumerate(starts)]  # each cache its own capacity
    q, k_new, v_new, ks, vs = _rows(len(starts), nh, nkv, d, starts, caps, kv_type)
    ks2, vs2 = [k.copy() for k in ks], [v.copy() for v in vs]
    want = _alone(q, k_new, v_new, ks2, vs2, starts, window, softcap, threads)
    out = np.full_like(want, np.nan)
    _attention.attend_rows(q, k_new, v_new, ks, vs, out, starts, window, softcap, threads)
    assert np.array_equal(out, want)
    for a, b in zip(ks + vs, ks2 + vs2):  # the writes too, F16 rounding included
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8))


def test_float16_writes_round_as_numpy_does():
    edge = np.array([0.0, -0.0, 1.0, 65504.0, 65519.99, 65520.0, 1e6, -np.inf, np.inf, 2.0 ** -25,
                     2.0 ** -25 * 1.0001, 2.0 ** -24 * 1.5, 2.0 ** -24 * 2.5, 2.0 ** -14 * 0.9999, 1 + 2.0 ** -11,
                     1 + 3 * 2.0 ** -11, 6.1e-5, -3.3e-7, 1e-9], np.float32)
    rng = np.random.default_rng(3)
    values = np.concatenate([edge, rng.standard_normal(300).astype(np.float32) * 10.0 ** rng.integers(-9, 6, 300)])
    d = 16
    n = -(-len(values) // d)  # rows of the head size
    flat = np.zeros(n * d, np.float32)
    flat[:len(values)] = values
    k_new = flat.reshape(n, 1, d)
    ks = [np.zeros((1, 1, d), np.float16) for _ in range(n)]
    vs = [np.zeros((1, 1, d), np.float16) for _ in range(n)]
    out = np.empty((n, d), np.float32)
    _attention.attend_rows(np.zeros((n, 1, d), np.float32), k_new, k_new, ks, vs, out, [0] * n, 0, 0.0, 1)
    got = np.concatenate([k[0, 0] for k in ks])
    with np.errstate(over="ignore"):  # 65520 and up are meant to become inf
        want = flat.astype(np.float16)
    assert np.array_equal(got.view(np.uint16), want.view(np.uint16))


def _args(**change):
    q, k_new, v_new, ks, vs = _rows(2, 4, 2, 8, [3, 5], [8, 8], np.float32)
    a = dict(q=q, k_new=k_new, v_new=v_new, ks=ks, vs=vs, out=np.empty((2, 32), np.float32), starts=[3, 5],
             window=0, softcap=0.0, threads=1)
    a.update(change)
    return a


@pytest.mark.parametrize("change, named", [
    (dict(starts=[3]), "1 starts for 2 rows"),
    (dict(starts=[3, 8]), "0 <= start < its cache's capacity"),
    (dict(ks=[np.zeros((2, 8, 8), np.float32)]), "ks holds 1 caches for 2 rows"),
    (dict(vs=[np.zeros((2, 8, 8), np.float16)] * 2), "the same dtype"),
    (dict(out=np.empty((2, 31), np.float32)), "out must be"),
    (dict(q=np.zeros((2, 3, 8), np.float32)), "multiple of k_new's n_head_kv"),
    (dict(k_new=np.zeros((2, 2, 16), np.float32)[:, :, ::2]), "k_new must be a row-contiguous"),
])
def test_bad_arguments_get_one_line_errors(change, named):
    with pytest.raises(ValueError, match=named) as e:
        _attention.attend_rows(**_args(**change))
    assert "\n" not in str(e.value)
