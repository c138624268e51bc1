"""Each cuda-backend kernel against the NumPy reference on fresh random
inputs, outputs poisoned with NaN before every run (an unwritten element
fails). Run on a GPU by cuda_check.py; returns rows for its table."""

from __future__ import annotations

import numpy as np
import cupy as cp

from chord_core.backend.attention_ref import attend_reference
from chord_core.backend.cuda import act_q8, matrices, sources
from chord_core.backend.cuda.matrices import Scratch, linear, upload_part, DeviceMatrix
from chord_core.backend.cuda.step import NORM_THREADS, attend, decode_splits
from chord_core.backend.cuda.device import f32, i32, launch, ptr
from chord_core.quants import REGISTRY, dequantize
from chord_core.rope import apply_rope, rope_rotations
from chord_core.forward import rms_norm

# ggml type -> byte offsets of its F16 scale fields (set to sane values; the rest random)
SCALES = {2: (0,), 3: (0, 2), 6: (0,), 7: (0, 2), 8: (0,), 12: (0, 2), 13: (0, 2), 14: (208,), 10: (80, 82),
          11: (108,)}
TYPES = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14,
         "Q2_K": 10, "Q3_K": 11, "F16": 1, "BF16": 30, "F32": 0}


def random_raw(rng, type_id: int, rows: int, cols: int) -> np.ndarray:
    if type_id in (0, 1, 30):
        v = rng.standard_normal((rows, cols)).astype(np.float32) * 0.05
        if type_id == 0:
            return v.view(np.uint8)
        if type_id == 1:
            return v.astype(np.float16).view(np.uint8)
        return (v.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    q = REGISTRY[type_id]
    nb = rows * cols // q.block_elems
    b = rng.integers(0, 256, (nb, q.block_bytes), dtype=np.uint8)
    for off in SCALES[type_id]:
        b[:, off:off + 2] = (rng.uniform(0.002, 0.02, nb).astype(np.float16)).view(np.uint8).reshape(nb, 2)
    return b.reshape(rows, -1)


def rel(out, ref) -> float:
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    if not np.isfinite(out).all():
        return float("nan")
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30))


def _x_ref(t: int, x: np.ndarray) -> np.ndarray:
    """The activations a GEMV of type t computes with: the k-quants' in two 8-bit levels."""
    if t in sources.Q8_DECODERS:
        return act_q8.dequantize_rows(act_q8.quantize_rows(x), x.shape[1])
    return x.astype(np.float64)


def _gemv_shapes(t, part, x, w) -> float:
    """Worst relative error over every compiled GEMV shape of the type, T = 1."""
    rows, cols = part.rows, part.cols
    xd = cp.asarray(x)
    xq = cp.empty(act_q8.row_bytes(cols), cp.uint8)
    matrices.quantize_x(xd, 0, cols, 1, cols, xq)
    worst = 0.0
    q8 = t in sources.Q8_DECODERS
    for shape in sources.GEMV_Q8_SHAPES if q8 else sources.GEMV_SHAPES:
        y = cp.full((1, rows), np.nan, cp.float32)
        if q8:
            matrices.gemv_q8(part, xq, 1, y, 0, rows, shape=shape)
        else:
            matrices.gemv(part, xd, 0, cols, 1, y, 0, rows, shape=shape)
        worst = max(worst, rel(cp.asnumpy(y), _x_ref(t, x) @ w.T))
    return worst


def check_quantize_x(rng) -> list[tuple[str, str, float, bool]]:
    """quantize_x writes act_q8.quantize_rows' bytes exactly (zero groups, wide ranges)."""
    res = []
    for cols, T in ((256, 1), (4096, 3), (14336, 2)):
        x = (rng.standard_normal((T, cols)) * np.exp(rng.uniform(-8, 8, (T, cols // 32, 1))).repeat(32, 2)
             .reshape(T, cols)).astype(np.float32)
        x[0, 32:64] = 0
        n = act_q8.row_bytes(cols)
        xq = cp.full(T * n, 0xAB, cp.uint8)
        xd = cp.asarray(x)
        matrices.quantize_x(xd, 0, cols, T, cols, xq)
        got, ref = cp.asnumpy(xq).reshape(T, n), act_q8.quantize_rows(x)
        diff = int((got != ref).sum())
        err = float(np.abs(act_q8.dequantize_rows(got, cols) - x).max() / np.abs(x).max())
        res.append(("quantize_x", f"T={T} cols={cols}: bytes differing from act_q8 {diff}", err, diff == 0))
    return res


def check_linear(rng, rows=301, cols=768) -> list[tuple[str, str, float, bool]]:
    """(kernel, case, rel error, pass) for every type and path."""
    res = []
    for name, t in TYPES.items():
        raw = random_raw(rng, t, rows, cols)
        w = dequantize(raw, t, (rows, cols)).astype(np.float64)
        part = upload_part(raw, t, rows, cols)
        m = DeviceMatrix((part,), rows, cols)
        first = {}
        for T in (1, 5, 40):
            x = rng.standard_normal((T, cols)).astype(np.float32)
            y = cp.full((T, rows), np.nan, cp.float32)
            linear(m, cp.asarray(x), 0, cols, T, y, 0, rows, Scratch(rows * cols, T, cols))
            out = cp.asnumpy(y)
            q8 = T <= 32 and t in sources.Q8_DECODERS
            e = rel(out, (_x_ref(t, x) if T <= 32 else x.astype(np.float64)) @ w.T)
            path = ("gemv_q8" if q8 else "gemv") if T <= 32 else "f16 gemm"
            # types without a decoder are F16 on the GPU: their weights round there
            tol = (1e-5 if t in sources.DECODERS else 1e-3) if T <= 32 else 5e-3
            case = f"T={T}"
            if q8:  # against the float activations too: the two levels' own error
                case += f" (vs float x: {rel(out, x.astype(np.float64) @ w.T):.1e})"
            res.append((f"{path} {name}", case, e, e <= tol))
            if T == 1:
                first = {"x": x, "y": out}
        if t in sources.DECODERS:
            shapes = sources.GEMV_Q8_SHAPES if t in sources.Q8_DECODERS else sources.GEMV_SHAPES
            worst = _gemv_shapes(t, part, first["x"], w)
            res.append((f"gemv {name}", f"T=1, every shape {shapes}", worst, worst <= 1e-5))
        # a short chunk's rows equal one-token products bit for bit
        x = np.concatenate([first["x"], rng.standard_normal((4, cols)).astype(np.float32)])
        y = cp.full((5, rows), np.nan, cp.float32)
        linear(m, cp.asarray(x), 0, cols, 5, y, 0, rows, Scratch(rows * cols, 5, cols))
        same = bool((cp.asnumpy(y)[0] == first["y"][0]).all())
        res.append((f"gemv {name}", "row of T=5 == T=1 bitwise", 0.0 if same else 1.0, same))
    return res


def _attend_case(rng, nh, nkv, d, cap, start, T, window, softcap):
    q = (rng.standard_normal((T, nh, d)) / np.sqrt(d)).astype(np.float32)
    k = rng.standard_normal((nkv, cap, d)).astype(np.float16)
    v = rng.standard_normal((nkv, cap, d)).astype(np.float16)
    lo = max(0, start - window + 1) if window else 0
    ref = np.empty((T, nh * d), np.float32)
    attend_reference(q, k, v, ref, start, lo, start + T, window, softcap)
    S = decode_splits(nh) if T <= 32 else 1
    out = cp.full((T, nh * d), np.nan, cp.float32)
    attend(cp.asarray(q), cp.asarray(k), cp.asarray(v), cap, cp.asarray(np.array([start], np.int32)), T, nh, nkv, d,
           window, softcap, S, cp.full(T * nh * S * d, np.nan, cp.float32), cp.full(T * nh * S * 2, np.nan, cp.float32),
           out)
    return q, k, v, cp.asnumpy(out), ref


def check_attention(rng) -> list[tuple[str, str, float, bool]]:
    res = []
    for d in sources.HEAD_DIMS:
        for (start, T, window, softcap) in ((0, 1, 0, 0.0), (700, 1, 0, 0.0), (700, 1, 64, 0.0), (20, 5, 0, 30.0),
                                            (0, 64, 0, 0.0), (300, 100, 16, 0.0)):
            cap = start + T + 3
            q, k, v, out, ref = _attend_case(rng, 8, 2, d, cap, start, T, window, softcap)
            e = rel(out, ref)
            res.append((f"attention d={d}", f"start={start} T={T} window={window} softcap={softcap}", e, e <= 2e-5))
        # rows of a 5-token chunk equal the decode steps at their positions
        nh, nkv, cap, start = 8, 2, 600, 500
        q = rng.standard_normal((5, nh, d)).astype(np.float32)
        k = cp.asarray(rng.standard_normal((nkv, cap, d)).astype(np.float16))
        v = cp.asarray(rng.standard_normal((nkv, cap, d)).astype(np.float16))
        S = decode_splits(nh)

        def run(qrows, pos):
            T = qrows.shape[0]
            out = cp.full((T, nh * d), np.nan, cp.float32)
            attend(cp.asarray(qrows), k, v, cap, cp.asarray(np.array([pos], np.int32)), T, nh, nkv, d, 0, 0.0, S,
                   cp.empty(T * nh * S * d, cp.float32), cp.empty(T * nh * S * 2, cp.float32), out)
            return cp.asnumpy(out)
        chunk = run(q, start)
        same = all((chunk[i] == run(q[i:i + 1], start + i)[0]).all() for i in range(5))
        res.append((f"attention d={d}", "rows of T=5 == decode steps bitwise", 0.0 if same else 1.0, same))
    return res


def check_elementwise(rng) -> list[tuple[str, str, float, bool]]:
    res = []
    T, E = 7, 640
    eps = 1e-6
    for post in (False, True):
        x = rng.standard_normal((T, E)).astype(np.float32) * 3
        a = rng.standard_normal((T, E)).astype(np.float32)
        pw = rng.standard_normal(E).astype(np.float32) if post else None
        w = rng.standard_normal(E).astype(np.float32)
        # device arrays held in names until the kernel has run (a temporary's memory goes back to the pool)
        xd, hd = cp.asarray(x), cp.full((T, E), np.nan, cp.float32)
        ad, pwd, wd = cp.asarray(a), None if pw is None else cp.asarray(pw), cp.asarray(w)
        launch("layer_ops", "residual_norm", (T,), (NORM_THREADS,),
               [ptr(xd), ptr(ad), i32(E), ptr(pwd), ptr(wd), ptr(hd), i32(E), f32(eps), i32(1)], shared_mem=4 * E)
        cp.cuda.Stream.null.synchronize()
        x2 = x + (rms_norm(a, pw, eps) if post else a)
        e = max(rel(cp.asnumpy(xd), x2), rel(cp.asnumpy(hd), rms_norm(x2, w, eps)))
        res.append(("residual_norm", f"post_norm={post}", e, e <= 1e-6))
    F = 1000
    gu = rng.standard_normal((T, 2 * F)).astype(np.float32) * 2
    from chord_core.forward import _gelu_tanh, _silu
    gud = cp.asarray(gu)
    for gelu in (0, 1):
        out = cp.full((T, F), np.nan, cp.float32)
        launch("layer_ops", "act_mul", ((T * F + 255) // 256,), (256,), [ptr(gud), i32(F), i32(T), i32(gelu), ptr(out)])
        g = gu[:, :F].copy()
        ref = (_gelu_tanh(g) if gelu else _silu(g)) * gu[:, F:]
        e = rel(cp.asnumpy(out), ref)
        res.append(("act_mul", "gelu" if gelu else "silu", e, e <= 1e-6))
    res += _check_qkv_post(rng)
    return res


def _check_qkv_post(rng) -> list[tuple[str, str, float, bool]]:
    res = []
    nh, nkv, d, n_rot, cap, start, T = 4, 2, 64, 64, 40, 9, 3
    cols = nh * d + 2 * nkv * d
    from chord_core.backend.cuda.step import inv_freqs
    for qk_norm, bias in ((False, False), (True, True)):
        qkv = rng.standard_normal((T, cols)).astype(np.float32)
        b = rng.standard_normal(cols).astype(np.float32) if bias else None
        qn = rng.standard_normal(d).astype(np.float32) if qk_norm else None
        kn = rng.standard_normal(d).astype(np.float32) if qk_norm else None
        scale = 0.125
        q_out = cp.full((T, nh * d), np.nan, cp.float32)
        kc = cp.full((nkv, cap, d), np.nan, cp.float16)
        vc = cp.full((nkv, cap, d), np.nan, cp.float16)
        keep = [cp.asarray(qkv), None if b is None else cp.asarray(b), None if qn is None else cp.asarray(qn),
                None if kn is None else cp.asarray(kn), cp.asarray(inv_freqs(n_rot, 10000.0, 1.0, None)),
                cp.asarray(np.array([start], np.int32))]
        launch("layer_ops", "qkv_post", (T, nh + 2 * nkv), (128,),
               [ptr(keep[0]), i32(cols), ptr(keep[1]), ptr(keep[2]), ptr(keep[3]), ptr(keep[4]), i32(n_rot),
                ptr(keep[5]), f32(scale), f32(1e-6), i32(nh), i32(nkv), i32(d), i32(d), ptr(q_out), ptr(kc), ptr(vc),
                i32(cap)])
        cp.cuda.Stream.null.synchronize()
        h = qkv + (b if b is not None else 0)
        q = h[:, :nh * d].reshape(T, nh, d).copy()
        k = h[:, nh * d:(nh + nkv) * d].reshape(T, nkv, d).copy()
        v = h[:, (nh + nkv) * d:].reshape(T, nkv, d)
        if qk_norm:
            q, k = rms_norm(q, qn, 1e-6), rms_norm(k, kn, 1e-6)
        rot = rope_rotations(np.arange(start, start + T), n_rot, 10000.0)
        apply_rope(q, rot)
        apply_rope(k, rot)
        q *= scale
        e_q = rel(cp.asnumpy(q_out).reshape(T, nh, d), q)
        e_k = rel(cp.asnumpy(kc)[:, start:start + T].astype(np.float32), k.transpose(1, 0, 2))
        e_v = rel(cp.asnumpy(vc)[:, start:start + T].astype(np.float32), v.transpose(1, 0, 2))
        e = max(e_q, e_k, e_v)
        res.append(("qkv_post", f"qk_norm={qk_norm} bias={bias} (K/V in F16)", e, e_q <= 1e-5 and max(e_k, e_v) <= 1e-3))
    return res


def run_all(seed: int = 0) -> list[tuple[str, str, float, bool]]:
    rng = np.random.default_rng(seed)
    return check_quantize_x(rng) + check_linear(rng) + check_attention(rng) + check_elementwise(rng)
