"""Prefill-sized products (the tile path), builds compared (orientation
only: a shared machine gives rough numbers).

    python benchmarks/prefill_speed.py                                   # this build
    python benchmarks/prefill_speed.py before=/tmp/old/_kernels.so after=core/_kernels...so \\
        --mats 1b_gate 1b_down_q6 q4k_wide --threads 1

Each build named NAME=PATH is loaded as its own module; every round times
every build in turn (so a busy machine slows them alike); the table gives
medians in ms and GMAC/s per thread, and whether the builds' outputs are
bit-identical. Matrices: the random Llama 3.2 1B model's own (1b_*; made by
benchmarks/make_random_gguf.py, path by --model) or random blocks of a shape.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import numpy as np

from kernel_speed import random_weights

MODEL_MATS = {"1b_gate": "blk.0.ffn_gate.weight", "1b_down_q6": "blk.0.ffn_down.weight",
              "1b_down_q4": "blk.2.ffn_down.weight", "1b_q": "blk.0.attn_q.weight"}
RANDOM_MATS = {"q4k_wide": (12, 2048, 14336), "q6k_wide": (14, 2048, 14336), "q4_1": (3, 4096, 2048),
               "q5_0": (6, 2048, 2048), "q8_0": (8, 2048, 2048)}


def load_build(name: str, path: str):
    spec = importlib.util.spec_from_file_location(f"{name}._kernels", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def matrix(name: str, model: str, rng: np.random.Generator):
    if name in MODEL_MATS:
        from chord_core.gguf_file import open_gguf
        g = open_gguf(model)
        t = g.tensors[MODEL_MATS[name]]
        return np.asarray(g.raw(t.name)).reshape(t.shape[0], -1), t.ggml_type, t.shape[0], t.shape[1]
    tid, rows, cols = RANDOM_MATS[name]
    return random_weights(tid, rows, cols, rng), tid, rows, cols


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("builds", nargs="*", help="NAME=path/to/_kernels.so (default: this build)")
    p.add_argument("--mats", nargs="+", choices=[*MODEL_MATS, *RANDOM_MATS], default=["1b_gate", "1b_down_q6"])
    p.add_argument("--model", default="/work/models/random-llama-3.2-1b-Q4_K_M.gguf")
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args()
    if a.builds:
        mods = {b.split("=", 1)[0]: load_build(*b.split("=", 1)) for b in a.builds}
    else:
        import chord_core._kernels as K
        mods = {"this": K}
    rng = np.random.default_rng(0)
    print(f"T={a.tokens}, {a.threads} thread(s), medians of {a.rounds} rounds: ms (GMAC/s per thread)")
    for name in a.mats:
        w, tid, rows, cols = matrix(name, a.model, rng)
        x = rng.standard_normal((a.tokens, cols), dtype=np.float32)
        outs = {b: np.empty((a.tokens, rows), np.float32) for b in mods}
        times = {b: [] for b in mods}
        for _ in range(a.rounds):
            for b, m in mods.items():
                t0 = time.perf_counter()
                m.matmul(w, tid, rows, cols, x, outs[b], a.threads)
                times[b].append(time.perf_counter() - t0)
        first = next(iter(outs.values()))
        same = all(np.array_equal(o, first) for o in outs.values())
        macs = rows * cols * a.tokens / a.threads / 1e9
        cells = "  ".join(f"{b}: {statistics.median(v) * 1e3:7.2f} ({macs / statistics.median(v):5.1f})"
                          for b, v in times.items())
        print(f"{name:<11} {rows} x {cols} type {tid}  {cells}  {'same bits' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
