"""Orientation timings of chord_core._kernels (not a test; a shared machine
gives rough numbers only).

    python benchmarks/kernel_speed.py                  # decode: G weights/s per thread
    python benchmarks/kernel_speed.py --prefill        # T=512, ms per product (--blas: vs dequantize + BLAS)
    python benchmarks/kernel_speed.py --types Q4_K Q6_K --isas avx2

Decode: T=1, one thread, a matrix that fits in L2/L3 (default 1024 x 4096),
best of several repeats. Prefill: a 2048 x 8192 matrix (Q4_K unless --types)
at T=512 on 2 threads; --blas adds dequantize_rows (per tile) + np.matmul.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import chord_core._kernels as K

TYPES = {"F32": 0, "F16": 1, "BF16": 30, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
         "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14}
LAYOUT = {0: (1, 4, ()), 1: (1, 2, ()), 30: (1, 2, ()), 2: (32, 18, (0,)), 3: (32, 20, (0, 2)),
          6: (32, 22, (0,)), 7: (32, 24, (0, 2)), 8: (32, 34, (0,)), 10: (256, 84, (80, 82)),
          11: (256, 110, (108,)), 12: (256, 144, (0, 2)), 13: (256, 176, (0, 2)), 14: (256, 210, (208,))}


def random_weights(type_id: int, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    be, bb, scales = LAYOUT[type_id]
    if type_id == 0:
        return rng.standard_normal((rows, cols), dtype=np.float32).view(np.uint8)
    if type_id in (1, 30):
        return rng.standard_normal((rows, cols)).astype(np.float16).view(np.uint8)
    blocks = rng.integers(0, 256, (rows * cols // be, bb), dtype=np.uint8)
    for off in scales:
        blocks[:, off:off + 2] = np.full(blocks.shape[0], 0.01, np.float16).view(np.uint8).reshape(-1, 2)
    return blocks.reshape(rows, -1)


def best_time(fn, repeats: int, min_time: float = 0.2) -> float:
    fn()
    n = 1
    while True:  # calibrate so one sample takes min_time / repeats
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > min_time / repeats:
            break
        n *= 2
    best = dt / n
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def decode(types, isas, rows, cols, threads, repeats):
    rng = np.random.default_rng(0)
    print(f"T=1, {rows} x {cols}, {threads} thread(s): G weights/s per thread (best of {repeats})")
    print("type   " + "".join(f"{i:>10}" for i in isas))
    x = rng.standard_normal((1, cols), dtype=np.float32)
    out = np.empty((1, rows), np.float32)
    for name in types:
        tid = TYPES[name]
        w = random_weights(tid, rows, cols, rng)
        cells = []
        for isa in isas:
            K.set_isa(isa)
            t = best_time(lambda: K.matmul(w, tid, rows, cols, x, out, threads), repeats)
            cells.append(rows * cols / t / 1e9 / threads)
        print(f"{name:<7}" + "".join(f"{c:10.1f}" for c in cells))


def prefill(types, isas, threads, repeats, blas, rows=2048, cols=8192, T=512, tile=256):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, cols), dtype=np.float32)
    out = np.empty((T, rows), np.float32)
    flops = 2 * rows * cols * T
    print(f"prefill {rows} x {cols}, T={T}, {threads} threads: ms (best of {repeats})")
    print("type   " + "".join(f"{i:>10}" for i in isas))
    for name in types:
        tid = TYPES[name]
        w = random_weights(tid, rows, cols, rng)
        cells = []
        for isa in isas:
            K.set_isa(isa)
            cells.append(best_time(lambda: K.matmul(w, tid, rows, cols, x, out, threads), repeats, 1.0))
        print(f"{name:<7}" + "".join(f"{c * 1e3:10.1f}" for c in cells))
    if not blas:
        return
    w = random_weights(12, rows, cols, rng)
    tilebuf = np.empty((tile, cols), np.float32)

    def via_blas():
        for r in range(0, rows, tile):
            K.dequantize_rows(w, 12, cols, r, tile, tilebuf, threads)
            np.matmul(x, tilebuf.T, out=out[:, r:r + tile])

    K.set_isa(isas[0])
    t = best_time(via_blas, repeats, 1.0)
    print(f"Q4_K by dequantize_rows + np.matmul (tiles of {tile} rows): {t * 1e3:8.1f} ms  "
          f"{flops / t / 1e9:6.1f} GFLOP/s")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--types", nargs="+", choices=list(TYPES),
                   help="default: every type (decode), Q4_K (prefill)")
    p.add_argument("--isas", nargs="+", default=list(K.isas()))
    p.add_argument("--rows", type=int, default=1024)
    p.add_argument("--cols", type=int, default=4096)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--prefill", action="store_true")
    p.add_argument("--blas", action="store_true", help="prefill: also time dequantize_rows + np.matmul")
    a = p.parse_args()
    if a.prefill:
        prefill(a.types or ["Q4_K"], a.isas, max(a.threads, 2), a.repeats, a.blas)
    else:
        decode(a.types or list(TYPES), a.isas, a.rows, a.cols, a.threads, a.repeats)


if __name__ == "__main__":
    main()
