"""Decode attention per (row, layer): `attend_rows` (a decode step's call,
B rows each over its own cache) and `attend` with T=1 (a row of a chunk cut
as decode cuts it), at SmolLM2-135M's shape (9 heads, 3 kv heads, hd 64).

    python benchmarks/decode_attention.py [--rows 1 4] [--keys 128 512 2048]
        [--kv f32 f16] [--isa avx512 avx2 portable] [--threads 2] [--layers 30]

`--layers N` cycles over N layers' caches, as a decode step does, and with
`--stream MB` (default 3) each layer's call follows a read of that many MB of
other memory, as a decode step streams a layer's weights between two
attention calls: so the keys and values come from memory, as in the engine
(`--layers 1 --stream 0` keeps one layer's cache hot). Only the attention
calls are timed. Prints microseconds per row and layer (medians of repeated
steps); a shared machine makes them noisy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from chord_core import _attention, _kernels

N_HEAD, N_KV, HD = 9, 3, 64


def _median_us(step, min_seconds: float) -> float:
    times = []
    t_end = time.perf_counter() + min_seconds
    while len(times) < 7 or time.perf_counter() < t_end:
        times.append(step())
    return 1e6 * float(np.median(times))


class _Weights:
    """A product over other memory before each layer's call, as a decode step
    streams a layer's weights between two attention calls (on the same pool,
    so its workers are awake when attention starts, as in the engine)."""

    COLS = 576

    def __init__(self, mb_per_layer: float, layers: int, threads: int):
        self.rows = int(mb_per_layer * (1 << 20) / 4 / self.COLS)
        self.threads = threads
        self.raw = np.ones(max(self.rows * self.COLS * max(layers, 1), 1), np.float32).view(np.uint8)
        self.at, self.layers = 0, max(layers, 1)
        self.for_rows(1)

    def for_rows(self, rows: int) -> "_Weights":
        """The product's input: a decode step's rows."""
        self.x = np.ones((rows, self.COLS), np.float32)
        self.out = np.empty((rows, max(self.rows, 1)), np.float32)
        return self

    def read(self) -> None:
        if self.rows:
            n = self.rows * self.COLS * 4
            _kernels.matmul(self.raw[self.at * n:(self.at + 1) * n], 0, self.rows, self.COLS, self.x, self.out,
                            self.threads)
            self.at = (self.at + 1) % self.layers


def _step(kind: str, rows: int, keys: int, dtype, layers: int, threads: int, weights: _Weights, rng):
    """A callable running one decode step's attention over `layers` layers;
    returns the seconds the attention calls took."""
    cap = keys
    pool = rng.standard_normal((2, N_KV, cap, HD)).astype(dtype)  # copied: random numbers are slow to draw
    caches = [[(pool[0].copy(), pool[1].copy()) for _ in range(rows)] for _ in range(layers)]
    q = (rng.standard_normal((rows, N_HEAD, HD)) / np.sqrt(HD)).astype(np.float32)
    kn = rng.standard_normal((rows, N_KV, HD)).astype(np.float32)
    vn = rng.standard_normal((rows, N_KV, HD)).astype(np.float32)
    out = np.empty((rows, N_HEAD * HD), np.float32)
    starts = [keys - 1] * rows
    if kind == "attend_rows":
        lists = [([c[0] for c in layer], [c[1] for c in layer]) for layer in caches]

        def step():
            spent = 0.0
            for k, v in lists:
                weights.read()
                t0 = time.perf_counter()
                _attention.attend_rows(q, kn, vn, k, v, out, starts, 0, 0.0, threads)
                spent += time.perf_counter() - t0
            return spent
    else:
        o1 = np.empty((1, N_HEAD * HD), np.float32)
        qs = [np.ascontiguousarray(q[b:b + 1]) for b in range(rows)]

        def step():
            spent = 0.0
            for layer in caches:
                weights.read()
                t0 = time.perf_counter()
                for b, (k, v) in enumerate(layer):
                    _attention.attend(qs[b], k, v, o1, keys - 1, 0, keys, 0, 0.0, threads)
                spent += time.perf_counter() - t0
            return spent
    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--keys", type=int, nargs="+", default=[128, 512, 2048])
    ap.add_argument("--kv", nargs="+", default=["f32", "f16"])
    ap.add_argument("--isa", nargs="+", default=list(_attention.isas()))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--stream", type=float, default=3.0, help="MB read before each layer's call")
    ap.add_argument("--kind", nargs="+", default=["attend_rows", "attend"])
    ap.add_argument("--seconds", type=float, default=0.5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    weights = _Weights(args.stream, args.layers, args.threads)
    print(f"us per (row, layer); {args.threads} threads, {args.layers} layers cycled, {args.stream} MB read between")
    for kind in args.kind:
        for isa in args.isa:
            _attention.set_isa(isa)
            for kv in args.kv:
                dtype = np.float16 if kv == "f16" else np.float32
                cells = []
                for rows in args.rows:
                    for keys in args.keys:
                        step = _step(kind, rows, keys, dtype, args.layers, args.threads, weights.for_rows(rows), rng)
                        us = _median_us(step, args.seconds) / (rows * args.layers)
                        cells.append(f"r{rows}/k{keys} {us:6.2f}")
                print(f"{kind:11s} {isa:8s} {kv}: " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
