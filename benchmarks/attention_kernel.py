"""Orientation timings of the flash attention kernel against the NumPy
reference, at Gemma 3 270M's and SmolLM2-135M's attention shapes.

    python benchmarks/attention_kernel.py [--threads 1 2] [--kv f32 f16]

Medians of repeated calls; a busy machine makes them noisy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from chord_core import _attention
from chord_core.backend.attention_ref import attend_reference

SHAPES = {"gemma3-270m": (4, 1, 256), "smollm2-135m": (9, 3, 64)}
# (name, T, start): decode after 2047 tokens sees 2048 keys; prefill 512 over 512
PHASES = [("decode@2048", 1, 2047), ("prefill512", 512, 0)]


def _median_ms(fn, min_seconds=0.3):
    times = []
    t_end = time.perf_counter() + min_seconds
    while len(times) < 5 or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--kv", nargs="+", default=["f32", "f16"])
    ap.add_argument("--isa", nargs="+", default=list(_attention.isas()))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for model, (nh, nkv, d) in SHAPES.items():
        for phase, T, start in PHASES:
            for kv in args.kv:
                dt = np.float16 if kv == "f16" else np.float32
                q = (rng.standard_normal((T, nh, d)) / np.sqrt(d)).astype(np.float32)
                k = rng.standard_normal((nkv, start + T, d)).astype(dt)
                v = rng.standard_normal((nkv, start + T, d)).astype(dt)
                out = np.empty((T, nh * d), np.float32)
                ref = _median_ms(lambda: attend_reference(q, k, v, out, start, 0, start + T, 0, 0.0))
                cells = [f"numpy {ref:8.3f} ms"]
                for isa in args.isa:
                    _attention.set_isa(isa)
                    for th in args.threads:
                        ms = _median_ms(lambda: _attention.attend(q, k, v, out, start, 0, start + T, 0, 0.0, th))
                        cells.append(f"{isa}/{th}t {ms:7.3f} ms ({ref / ms:5.1f}x)")
                print(f"{model:13s} {phase:12s} {kv}: " + "  ".join(cells))


if __name__ == "__main__":
    main()
