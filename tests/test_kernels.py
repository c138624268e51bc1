"""chord_core._kernels against the NumPy reference (chord_core.quants).

Every weight type on every kernel path this CPU can run (set_isa), odd row
counts, rows split over 1-3 threads, T = 1, 2, 7, 37 and 512 (so both the
one-token kernels and the tile path of tile.h, with their token tails), and
every row of a product equal to its token's one-token product bit for bit.

Numerics: the quantized types quantize the activations x in two 8-bit
levels, per 32 elements for the 32-element types and per 256 for the
k-quants: d1 = amax / 127, q1 = round-half-even(x / d1), then the residual
q2 = round-half-even((x - d1 * q1) / d2) with d2 = d1 / 256, clamped to
+-127, in IEEE float32 steps, so x ~= d2 * (256 * q1 + q2). The tests
replicate that quantization exactly, so the kernel must equal
dequantize(W) @ xq up to float32 rounding of the sums:

    |kernel - W @ xq| <= 2e-5 * (|W| @ |xq|)

and, against the unquantized x, the two levels leave at most d1 / 256 per
element (d1 / 512 unless q2 was clamped):

    |kernel - W @ x| <= sum_c |W[r, c]| * amax(block of c in x[t]) / 32512
                        + 2e-5 * (|W| @ |x|)

F32/F16/BF16 weights keep x in float32: |kernel - W @ x| <= 2e-5 * (|W| @ |x|).
get_rows and dequantize_rows are bit-exact with the reference.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import chord_core._kernels as K
from chord_core.quants import dequantize

# ggml id -> (name, block elements, block bytes, byte offsets of f16 scale fields)
TYPES = {
    0: ("F32", 1, 4, ()), 1: ("F16", 1, 2, ()), 30: ("BF16", 1, 2, ()),
    2: ("Q4_0", 32, 18, (0,)), 3: ("Q4_1", 32, 20, (0, 2)), 6: ("Q5_0", 32, 22, (0,)),
    7: ("Q5_1", 32, 24, (0, 2)), 8: ("Q8_0", 32, 34, (0,)), 10: ("Q2_K", 256, 84, (80, 82)),
    11: ("Q3_K", 256, 110, (108,)), 12: ("Q4_K", 256, 144, (0, 2)), 13: ("Q5_K", 256, 176, (0, 2)),
    14: ("Q6_K", 256, 210, (208,)),
}
FLOAT_TYPES = (0, 1, 30)
ALL_ISAS = ("avx512", "avx2", "portable")
CPU_ISAS = K.isas()


def isa_params():
    return [pytest.param(name, marks=pytest.mark.skipif(
        name not in CPU_ISAS, reason=f"this CPU cannot run the {name} kernels (it runs {CPU_ISAS})"))
        for name in ALL_ISAS]


@pytest.fixture(params=isa_params())
def isa(request):
    before = K.isa()
    K.set_isa(request.param)
    yield request.param
    K.set_isa(before)


def random_weights(type_id: int, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, row_bytes) uint8: random blocks whose f16 scales are finite and sane."""
    name, be, bb, scale_offsets = TYPES[type_id]
    if type_id == 0:
        return rng.standard_normal((rows, cols), dtype=np.float32).view(np.uint8)
    if type_id == 1:
        return rng.standard_normal((rows, cols)).astype(np.float16).view(np.uint8)
    if type_id == 30:
        f = rng.standard_normal((rows, cols), dtype=np.float32)
        return (f.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    blocks = rng.integers(0, 256, (rows * cols // be, bb), dtype=np.uint8)
    for off in scale_offsets:
        sign = rng.choice([-1.0, 1.0], blocks.shape[0])
        scale = (sign * rng.uniform(0.5, 2.0, blocks.shape[0]) * 2.0 ** -6).astype(np.float16)
        blocks[:, off:off + 2] = scale.view(np.uint8).reshape(-1, 2)
    return blocks.reshape(rows, -1)


def act_block(type_id: int) -> int:
    be = TYPES[type_id][1]
    return 1 if be == 1 else be


def quantize_acts(x: np.ndarray, blk: int) -> np.ndarray:
    """The kernels' two-level activation quantization, replicated: dequantized values."""
    if blk == 1:
        return x.astype(np.float64)
    T, cols = x.shape
    xb = x.reshape(T, cols // blk, blk)
    d1 = (np.abs(xb).max(axis=2) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d1 != 0, np.float32(1) / d1, np.float32(0)).astype(np.float32)
    q1 = np.clip(np.rint(xb * inv[:, :, None]), -127, 127)
    r = xb - d1[:, :, None] * q1  # float32 steps, as the kernels
    q2 = np.clip(np.rint(r * (inv * np.float32(256))[:, :, None]), -127, 127)
    d2 = (d1 * np.float32(1 / 256)).astype(np.float64)
    return ((256 * q1.astype(np.float64) + q2) * d2[:, :, None]).reshape(T, cols)


def block_amax(x: np.ndarray, blk: int) -> np.ndarray:
    """Per element: the largest |x| of its activation block."""
    T, cols = x.shape
    a = np.abs(x).reshape(T, cols // blk, blk).max(axis=2)
    return np.repeat(a, blk, axis=1).astype(np.float64)


def run_matmul(raw, type_id, rows, cols, x, threads, pad=(5, 4)):
    """matmul into a column slice of a wider array; the columns around it stay NaN."""
    T = x.shape[0]
    big = np.full((T, pad[0] + rows + pad[1]), np.nan, np.float32)
    out = big[:, pad[0]:pad[0] + rows]
    K.matmul(raw, type_id, rows, cols, x, out, threads)
    assert np.isnan(big[:, :pad[0]]).all() and np.isnan(big[:, pad[0] + rows:]).all()
    return out


# (rows, T, threads, 32-block cols, 256-block cols); rows * cols * T above
# 64K where threads > 1, or the module keeps small products on one thread
CASES = [
    (33, 1, 1, 96, 512),
    (257, 2, 3, 256, 256),
    (50, 7, 2, 320, 768),
    (33, 37, 3, 96, 512),  # past every type's switch to the tile path (8-32 tokens), with token tails
    (40, 512, 2, 64, 256),
]


@pytest.mark.parametrize("type_id", list(TYPES), ids=[v[0] for v in TYPES.values()])
@pytest.mark.parametrize("rows,T,threads,cols32,cols256", CASES,
                         ids=[f"rows{c[0]}-T{c[1]}-threads{c[2]}" for c in CASES])
def test_matmul_matches_dequantize_then_matmul(isa, type_id, rows, T, threads, cols32, cols256):
    rng = np.random.default_rng(1000 * type_id + rows + T)
    be = TYPES[type_id][1]
    cols = cols256 if be == 256 else cols32
    raw = random_weights(type_id, rows, cols, rng)
    x = rng.standard_normal((T, cols), dtype=np.float32)
    x[:, :32] *= 8  # one loud block, so per-block scales matter
    got = run_matmul(raw, type_id, rows, cols, x, threads).astype(np.float64)
    W = dequantize(raw, type_id, (rows, cols)).astype(np.float64)
    xq = quantize_acts(x, act_block(type_id))
    want = xq @ W.T
    tol = 2e-5 * (np.abs(xq) @ np.abs(W).T) + 1e-6
    assert np.all(np.abs(got - want) <= tol), f"max excess {np.max(np.abs(got - want) - tol)}"
    if act_block(type_id) > 1:  # the documented bound against the unquantized x
        exact = x.astype(np.float64) @ W.T
        bound = (block_amax(x, act_block(type_id)) / 32512) @ np.abs(W).T * 1.0001
        bound += 2e-5 * (np.abs(x) @ np.abs(W).T) + 1e-6
        assert np.all(np.abs(got - exact) <= bound)


@pytest.mark.parametrize("type_id", [10, 11, 12, 13, 14], ids=[TYPES[t][0] for t in (10, 11, 12, 13, 14)])
def test_k_quant_products_whose_integer_sums_pass_int32_match_the_reference(isa, type_id):
    """Every quant and scale at its largest, activations all large and
    positive: a super-block's 256 * I1 + I2 passes int32 (a kernel that
    combines the levels in int32 where they fit must see that they do not
    here). The tile path (T >= 64) and the one-token kernels alike."""
    name, be, bb, scale_offsets = TYPES[type_id]
    rows, cols, T = 32, 512, 70
    raw = np.full((rows * cols // be, bb), 0xFF, np.uint8)
    if type_id == 14:
        raw[:, 192:208] = 0x7F  # Q6_K's int8 scales: +127, not -1
    for off in scale_offsets:
        raw[:, off:off + 2] = np.full(len(raw), 2.0 ** -6, np.float16).view(np.uint8).reshape(-1, 2)
    raw = raw.reshape(rows, -1)
    x = np.random.default_rng(5).uniform(0.5, 1.0, (T, cols)).astype(np.float32)
    got = run_matmul(raw, type_id, rows, cols, x, 2).astype(np.float64)
    W = dequantize(raw, type_id, (rows, cols)).astype(np.float64)
    xq = quantize_acts(x, be)
    want = xq @ W.T
    assert np.all(np.abs(got - want) <= 2e-5 * (np.abs(xq) @ np.abs(W).T) + 1e-6)
    alone = np.concatenate([run_matmul(raw, type_id, rows, cols, x[t:t + 1], 1) for t in (0, T - 1)])
    assert np.array_equal(got[[0, T - 1]], alone)


def identity_weights(type_id: int, n: int) -> np.ndarray:
    """(n, row_bytes) blocks of the n x n identity: d = 1 (and Q6_K's scales 1)."""
    one = np.array([1], np.float16).view(np.uint8)
    if type_id == 8:  # Q8_0: d, then 32 int8
        blocks = np.zeros((n, n // 32, 34), np.uint8)
        blocks[:, :, 0:2] = one
        for r in range(n):
            blocks[r, r // 32, 2 + r % 32] = 1
        return blocks.reshape(n, -1)
    blocks = np.zeros((n, n // 256, 210), np.uint8)  # Q6_K: ql, qh, scales, d; value d * sc * (q - 32)
    blocks[:, :, 128:192] = 0b10101010  # every high pair 2: q = 32, the value 0
    blocks[:, :, 192:208] = 1
    blocks[:, :, 208:210] = one
    for r in range(n):
        e = r % 256
        h, quarter, l = e // 128, (e % 128) // 32, e % 32
        byte = 64 * h + 32 * (quarter % 2) + l
        blocks[r, r // 256, byte] |= 1 << (4 * (quarter // 2))  # q = 33: the value 1
    return blocks.reshape(n, -1)


@pytest.mark.parametrize("type_id", [8, 14], ids=["Q8_0", "Q6_K"])
def test_activations_are_quantized_as_the_reference_does_bit_for_bit(isa, type_id):
    """Through the identity matrix a product returns d2 * (256 q + q2) of
    every element: the quants themselves, on the one-token and the tile
    path, equal the NumPy replica exactly (whichever SIMD code made them)."""
    n = 512
    W = identity_weights(type_id, n)
    x = np.random.default_rng(11).standard_normal((70, n), dtype=np.float32)
    x[:, :32] *= 8
    x[3, 256:] = 0  # a block of zeros: d = 0
    want = quantize_acts(x, TYPES[type_id][1]).astype(np.float32)
    for T in (1, 70):
        got = run_matmul(W, type_id, n, n, x[:T], 2)
        assert np.array_equal(got, want[:T]), f"T={T}: {np.count_nonzero(got != want[:T])} elements differ"


@pytest.mark.parametrize("type_id", [3, 8, 12, 14], ids=["Q4_1", "Q8_0", "Q4_K", "Q6_K"])
def test_rows_longer_than_a_tile_stretch_match_the_reference_and_their_tokens_alone(isa, type_id):
    """Rows of 4608 columns: the tile kernels run every token over 4096
    columns, then over the rest, carrying each row's sum across (tile.h's
    TILE_K_CHUNK); the rows still match dequantize-then-matmul, and each
    equals its token's one-token product bit for bit."""
    rng = np.random.default_rng(3 + type_id)
    rows, cols, T = 21, 4608, 70
    raw = random_weights(type_id, rows, cols, rng)
    x = rng.standard_normal((T, cols), dtype=np.float32)
    got = run_matmul(raw, type_id, rows, cols, x, 2)
    W = dequantize(raw, type_id, (rows, cols)).astype(np.float64)
    xq = quantize_acts(x, act_block(type_id))
    assert np.all(np.abs(got - xq @ W.T) <= 2e-5 * (np.abs(xq) @ np.abs(W).T) + 1e-6)
    alone = np.concatenate([run_matmul(raw, type_id, rows, cols, x[t:t + 1], 1) for t in (0, 33, T - 1)])
    assert np.array_equal(got[[0, 33, T - 1]], alone)


ROW_TOKENS = (1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 64, 67, 512)  # around every path's switch to the tile kernels and the avx512 32-row tiles (2-4)


@pytest.mark.parametrize("type_id", list(TYPES), ids=[v[0] for v in TYPES.values()])
def test_each_row_of_a_product_equals_that_token_alone_bit_for_bit(isa, type_id):
    """matmul(W, x)[t] == matmul(W, x[t:t+1])[0] exactly, whatever T and the
    thread count: a prefill row and a decode row are the same numbers (the
    next layer's 8-bit rounding would turn a last-bit difference into a
    visible one). 67 rows: four whole 16-row groups and a tail."""
    rng = np.random.default_rng(77 + type_id)
    rows, cols = 67, 1024
    raw = random_weights(type_id, rows, cols, rng)
    x = rng.standard_normal((max(ROW_TOKENS), cols), dtype=np.float32)
    x[:, :32] *= 8
    alone = np.concatenate([run_matmul(raw, type_id, rows, cols, x[t:t + 1], 1) for t in range(len(x))])
    for T in ROW_TOKENS:
        for threads in (1, 2, 3):
            got = run_matmul(raw, type_id, rows, cols, x[:T], threads)
            diff = np.argwhere(got != alone[:T])
            assert len(diff) == 0, f"T={T} threads={threads}: {len(diff)} entries differ, first (t, r) {diff[0]}"


@pytest.mark.skipif("avx512" not in CPU_ISAS, reason=f"this CPU cannot run the avx512 kernels ({CPU_ISAS})")
def test_avx512_kernels_for_cpus_without_vnni_pass_the_same_checks():
    """CHORD_VNNI=0 gives the avx512 path the kernels of AVX-512 CPUs without
    VNNI (maddubs one-token kernels, the AVX2 tile kernels): the product and
    bit-identity checks once more, in a fresh process."""
    env = dict(os.environ, CHORD_VNNI="0")
    checks = "avx512 and (bit_for_bit or matches_dequantize)"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", checks],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:]
    assert " passed" in r.stdout.splitlines()[-1] and "failed" not in r.stdout.splitlines()[-1]


@pytest.mark.parametrize("cols", [1, 37, 100])
@pytest.mark.parametrize("type_id", FLOAT_TYPES, ids=[TYPES[t][0] for t in FLOAT_TYPES])
def test_float_weights_take_rows_of_any_length(isa, type_id, cols):
    rng = np.random.default_rng(cols + type_id)
    raw = random_weights(type_id, 19, cols, rng)
    W = dequantize(raw, type_id, (19, cols)).astype(np.float64)
    for T in (1, 5):
        x = rng.standard_normal((T, cols), dtype=np.float32)
        got = run_matmul(raw, type_id, 19, cols, x, 1).astype(np.float64)
        want = x @ W.T
        assert np.all(np.abs(got - want) <= 2e-5 * (np.abs(x) @ np.abs(W).T) + 1e-6)


@pytest.mark.parametrize("type_id", list(TYPES), ids=[v[0] for v in TYPES.values()])
def test_get_rows_is_bit_exact(isa, type_id):
    rng = np.random.default_rng(type_id)
    rows, cols = 37, 512
    raw = random_weights(type_id, rows, cols, rng)
    ids = np.array([36, 0, 5, 5, 17], np.int64)
    out = np.empty((len(ids), cols), np.float32)
    K.get_rows(raw, type_id, cols, ids, out)
    want = dequantize(raw, type_id, (rows, cols))[ids]
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("type_id", list(TYPES), ids=[v[0] for v in TYPES.values()])
def test_dequantize_rows_is_bit_exact(type_id, threads):
    rng = np.random.default_rng(type_id + 7)
    rows, cols = 41, 256
    raw = random_weights(type_id, rows, cols, rng)
    out = np.empty((rows - 5, cols), np.float32)
    K.dequantize_rows(raw, type_id, cols, 3, rows - 5, out, threads)
    np.testing.assert_array_equal(out, dequantize(raw, type_id, (rows, cols))[3:rows - 2])


def test_every_f16_value_converts_like_numpy():
    raw = np.arange(65536, dtype=np.uint16).view(np.uint8)
    out = np.empty((1, 65536), np.float32)
    K.get_rows(raw, 1, 65536, np.zeros(1, np.int64), out)
    want = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(out[0]), nan)
    np.testing.assert_array_equal(out[0][~nan].view(np.uint32), want[~nan].view(np.uint32))


def test_matmul_with_one_dimensional_x_and_out():
    rng = np.random.default_rng(3)
    raw = random_weights(12, 20, 256, rng)
    x = rng.standard_normal(256, dtype=np.float32)
    out = np.empty(20, np.float32)
    K.matmul(raw, 12, 20, 256, x, out, 2)
    out2 = np.empty((1, 20), np.float32)
    K.matmul(raw, 12, 20, 256, x[None], out2, 1)
    np.testing.assert_array_equal(out, out2[0])


def test_set_isa_refuses_a_path_this_cpu_lacks():
    before = K.isa()  # the best path, or the one CHORD_ISA forced
    with pytest.raises(ValueError, match="'bogus' is not a kernel path this CPU can run"):
        K.set_isa("bogus")
    assert K.isa() == before


def kernels_import(isa_name: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CHORD_ISA=isa_name)
    code = "import chord_core._kernels as k; print(k.isa())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("name", CPU_ISAS)
def test_chord_isa_forces_each_path(name):
    r = kernels_import(name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == name


@pytest.mark.parametrize("name", ["bogus", "neon" if sys.platform != "darwin" else "avx512"])
def test_chord_isa_naming_an_unsupported_path_fails_with_one_line(name):
    if name in CPU_ISAS:
        pytest.skip(f"this CPU runs {name}")
    r = kernels_import(name)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: CHORD_ISA=")
    assert f"'{name}' is not a kernel path this CPU can run (it can run: {', '.join(CPU_ISAS)})" in last


def _args():
    rng = np.random.default_rng(0)
    raw = random_weights(12, 8, 256, rng)
    x = rng.standard_normal((2, 256), dtype=np.float32)
    return raw, x, np.empty((2, 8), np.float32)


@pytest.mark.parametrize("mutate,exc,message", [
    (lambda a: a.update(type_id=99), ValueError, "ggml type id 99 is not supported"),
    (lambda a: a.update(cols=100), ValueError, "cols 100 must be a positive multiple of Q4_K's block of 256"),
    (lambda a: a.update(rows=9), ValueError, "w has 1152 bytes, fewer than 9 rows"),
    (lambda a: a.update(rows=0), ValueError, "rows must be at least 1"),
    (lambda a: a.update(w=a["w"][:, ::2]), ValueError, "w must be C-contiguous"),
    (lambda a: a.update(w=3), TypeError, "w must be a buffer"),
    (lambda a: a.update(x=a["x"].astype(np.float64)), TypeError, "x must be float32"),
    (lambda a: a.update(x=np.asfortranarray(a["x"])), ValueError, "x must have contiguous float32 rows"),
    (lambda a: a.update(x=np.ascontiguousarray(a["x"][:, :128])), ValueError, "x has 128 columns, expected cols = 256"),
    (lambda a: a.update(out=np.empty((3, 8), np.float32)), ValueError, r"out has shape \(3, 8\), expected \(2, >= 8\)"),
    (lambda a: a.update(out=np.empty((2, 16), np.float32)[:, ::2]), ValueError, "out must have contiguous float32 rows"),
    (lambda a: a.update(out=np.empty((2, 8), np.float32)[::-1]), ValueError, "out must have contiguous float32 rows"),
    (lambda a: a.update(out=_read_only((2, 8))), TypeError, "out must be a writable float32 array"),
    (lambda a: a.update(threads=0), ValueError, "threads must be at least 1, got 0"),
])
def test_matmul_rejects_bad_arguments_with_one_line(mutate, exc, message):
    raw, x, out = _args()
    a = dict(w=raw, type_id=12, rows=8, cols=256, x=x, out=out, threads=1)
    mutate(a)
    with pytest.raises(exc, match=message) as e:
        K.matmul(a["w"], a["type_id"], a["rows"], a["cols"], a["x"], a["out"], a["threads"])
    assert "\n" not in str(e.value) and str(e.value).startswith("matmul: ")


def _read_only(shape):
    o = np.zeros(shape, np.float32)
    o.setflags(write=False)
    return o


def test_get_rows_rejects_ids_outside_the_matrix():
    raw, _, _ = _args()
    out = np.empty((2, 256), np.float32)
    with pytest.raises(IndexError, match=r"get_rows: row id 8 at position 1 is outside 0..7"):
        K.get_rows(raw, 12, 256, np.array([0, 8], np.int64), out)
    with pytest.raises(IndexError, match="row id -1"):
        K.get_rows(raw, 12, 256, np.array([-1, 0], np.int64), out)
    with pytest.raises(TypeError, match="ids must be a 1-D contiguous int64 array"):
        K.get_rows(raw, 12, 256, np.array([0, 1], np.int32), out)
    with pytest.raises(ValueError, match=r"out has shape \(2, 256\), expected \(3, 256\)"):
        K.get_rows(raw, 12, 256, np.array([0, 1, 2], np.int64), out)


def test_dequantize_rows_rejects_rows_past_the_end():
    raw, _, _ = _args()
    out = np.empty((4, 256), np.float32)
    with pytest.raises(ValueError, match=r"dequantize_rows: rows 6..9 are past the end of w \(8 rows"):
        K.dequantize_rows(raw, 12, 256, 6, 4, out, 1)
    with pytest.raises(ValueError, match="row0 -1 and nrows 4 must be >= 0"):
        K.dequantize_rows(raw, 12, 256, -1, 4, out, 1)
    with pytest.raises(ValueError, match="out must have contiguous float32 rows"):
        K.dequantize_rows(raw, 12, 256, 0, 4, np.empty((4, 512), np.float32)[:, :256], 1)


def test_concurrent_calls_from_python_threads_each_get_their_own_result():
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(11)
    raw = random_weights(12, 96, 512, rng)
    xs = [rng.standard_normal((3, 512), dtype=np.float32) for _ in range(4)]
    want = []
    for x in xs:
        o = np.empty((3, 96), np.float32)
        K.matmul(raw, 12, 96, 512, x, o, 1)
        want.append(o)

    def run(i):
        o = np.empty((3, 96), np.float32)
        for _ in range(50):
            K.matmul(raw, 12, 96, 512, xs[i], o, 2)
            if not np.array_equal(o, want[i]):
                return False
        return True

    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(run, range(4)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_workers():
    rng = np.random.default_rng(12)
    raw = random_weights(3, 256, 1024, rng)
    x = rng.standard_normal((2, 1024), dtype=np.float32)
    want = np.empty((2, 256), np.float32)
    K.matmul(raw, 3, 256, 1024, x, want, 2)  # the parent's workers exist now
    pid = os.fork()
    if pid == 0:  # child: exit status 0 only if the 2-thread result is right
        out = np.empty((2, 256), np.float32)
        K.matmul(raw, 3, 256, 1024, x, out, 2)
        os._exit(0 if np.array_equal(out, want) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
