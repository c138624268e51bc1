"""Check and time the cuda backend in one run on a GPU machine, writing a
table (markdown) to OUT/cuda_check.md and printing it last.

    python benchmarks/cuda_check.py --out $OUT [--smollm PATH] [--gemma PATH] [--big PATH | --make-big DIR]
        [--sections env,bandwidth,kernels,tiny,real,speed,cli]

Sections: the device and the copy-bandwidth ceiling; every kernel against
NumPy (cuda_kernel_checks.py); the tiny fixtures against llama.cpp's
logits; the real models' fidelity bars (README of the reference data) and
decode speed with host overhead; prefill 512 and decode of a random-weight
Mistral-7B-shaped Q4_K_M model (generated here with make_random_gguf.py);
`chord-chat run` and a short server session on the cuda backend.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
REF = ROOT / "tests" / "fixtures" / "reference"
rows: list[str] = []


def emit(line: str) -> None:
    rows.append(line)
    print(line, flush=True)


def section(title: str) -> None:
    emit(f"\n## {title}\n")


def event_ms(fn, reps: int = 20, warm: int = 3, stream=None) -> float:
    """Median device time of fn() in ms, by CUDA events on ``stream``."""
    import cupy as cp
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record(stream)
        fn()
        b.record(stream)
        b.synchronize()
        times.append(cp.cuda.get_elapsed_time(a, b))
    return float(np.median(times))


def env() -> None:
    import cupy as cp
    from chord_core.backend.cuda.device import device_name
    section("Device")
    emit(f"- device: {device_name()}; CuPy {cp.__version__}; CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}; "
         f"driver {cp.cuda.runtime.driverGetVersion()}")


def bandwidth() -> float:
    import cupy as cp
    section("Bandwidth ceiling")
    n = 1 << 28  # 1 GiB of float32
    a = cp.random.standard_normal(n, dtype=cp.float32)
    b = cp.empty_like(a)
    ms = event_ms(lambda: cp.copyto(b, a), reps=20)
    gbs = 2 * a.nbytes / ms / 1e6
    emit(f"- device-to-device copy of 1 GiB: {ms:.3f} ms, {gbs:.0f} GB/s counting read + write")
    return gbs


def kernels() -> None:
    import cuda_kernel_checks
    section("Kernels against NumPy (outputs poisoned with NaN before each run)")
    emit("| kernel | case | rel. error | ok |\n|---|---|---|---|")
    for k, case, e, ok in cuda_kernel_checks.run_all():
        emit(f"| {k} | {case} | {e:.2e} | {'yes' if ok else '**NO**'} |")


def tiny() -> None:
    from chord_core.model import Model
    section("Tiny fixtures against llama.cpp's logits (bars: F32 2e-3 + same argmax; quantized 5e-2, argmax >= 0.95)")
    emit("| model | max diff / max logit | argmax agree | decode == prefill rows (rel) | verify rows == decode bitwise |")
    emit("|---|---|---|---|---|")
    for path in sorted((REF / "tiny").glob("tiny-*.gguf")):
        try:
            z = np.load(path.with_suffix(".npz"))
            ids, ref = list(z["ids"]), z["logits"]
            m = Model.load(path, backend="cuda")
            got = m.logits(ids)
            d = float(np.abs(got - ref).max() / np.abs(ref).max())
            agree = float((got.argmax(1) == ref.argmax(1)).mean())
            # decode steps (the captured graph) against the prefill's rows
            cache = m.new_cache(len(ids) + 8)
            m.eval(ids[:4], cache)
            steps = np.stack([m.eval([t], cache) for t in ids[4:12]])
            dec = float(np.abs(steps - got[4:12]).max() / np.abs(got[4:12]).max())
            # a 5-token chunk (a speculative verify) against 5 decode steps, bit for bit
            c1, c2 = m.new_cache(64), m.new_cache(64)
            m.eval(ids[:6], c1)
            m.eval(ids[:6], c2)
            chunk = m.eval(ids[6:11], c1, all_logits=True)
            one = np.stack([m.eval([t], c2) for t in ids[6:11]])
            exact = bool((chunk == one).all())
            quant = "F32" not in path.name
            ok = (d <= 5e-2 and agree >= 0.95) if quant else (d <= 2e-3 and agree == 1.0)
            emit(f"| {path.stem} | {d:.2e} {'' if ok else '**FAIL**'} | {agree:.3f} | {dec:.1e} | {exact} |")
        except Exception as e:  # noqa: BLE001  (one bad fixture must not hide the others)
            emit(f"| {path.stem} | ERROR {type(e).__name__}: {e} | | | |")
            traceback.print_exc()
    # the hybrid: the first layer on the GPU, the second on the CPU
    path = REF / "tiny" / "tiny-llama-Q4_K_M.gguf"
    z = np.load(path.with_suffix(".npz"))
    full = Model.load(path, backend="cuda").logits(list(z["ids"]))
    part = Model.load(path, backend="cuda", gpu_layers=1).logits(list(z["ids"]))
    emit(f"\n- --gpu-layers 1 vs all layers on the GPU (tiny-llama-Q4_K_M): max diff / max logit "
         f"{float(np.abs(part - full).max() / np.abs(full).max()):.2e}")


def fidelity(name: str, path: str, ref_json: str) -> None:
    from chord_core.model import Model
    from chord_core.perplexity import log_softmax_at
    ref = json.loads(Path(ref_json).read_text())
    m = Model.load(path, backend="cuda")
    p = ref["passage"]
    t0 = time.perf_counter()
    rows_ = m.logits(p["ids"])
    t = time.perf_counter() - t0
    top1 = float((rows_.argmax(1) == np.array([r[0] for r in p["top_ids"]])).mean())
    ids = np.array(p["ids"])
    ppl = float(np.exp(-log_softmax_at(rows_[:-1], ids[1:]).mean()))
    r64 = rows_.astype(np.float64)
    mx = r64.max(1, keepdims=True)
    lse = mx[:, 0] + np.log(np.exp(r64 - mx).sum(1))
    ours = np.take_along_axis(r64, np.array(p["top_ids"]), 1) - lse[:, None]
    theirs = np.array(p["top_logits"]) - np.array(p["logsumexp"])[:, None]
    dlp = float(np.abs(ours - theirs).mean())
    dppl = (ppl - p["perplexity"]) / p["perplexity"]
    ok = top1 >= 0.95 and abs(dppl) <= 0.005 and dlp <= 0.15
    emit(f"| {name} | {top1:.3f} | {ppl:.4f} vs {p['perplexity']:.4f} ({100 * dppl:+.2f} %) | {dlp:.4f} | "
         f"{'yes' if ok else '**NO**'} | {len(ids) / t:.0f} |")


def decode_speed(name: str, path: str, n: int = 128, prompt_len: int = 16, breakdown: float = 0.0) -> dict:
    """Decode tok/s at a short context; GPU time of one graph replay; host
    overhead; with ``breakdown`` (the copy ceiling), the step's operations."""
    from chord_core.model import Model
    m = Model.load(path, backend="cuda")
    rng = np.random.default_rng(0)
    ids = [int(i) for i in rng.integers(3, m.n_vocab, prompt_len + n + 16)]
    cache = m.new_cache(prompt_len + n + 64)
    m.eval(ids[:prompt_len], cache)
    for t in ids[prompt_len:prompt_len + 8]:  # capture + warm
        m.eval([t], cache)
    walls = []
    for t in ids[prompt_len + 8:prompt_len + 8 + n]:
        t0 = time.perf_counter()
        m.eval([t], cache)
        walls.append(time.perf_counter() - t0)
    wall = float(np.median(walls))
    dm, graph = cache.decode_graph
    gpu = event_ms(lambda: graph.launch(dm.stream), reps=30, stream=dm.stream) / 1e3  # replays at one position
    ops, times = [], {}
    if breakdown:
        import cuda_step_breakdown
        ops, times = cuda_step_breakdown.breakdown(dm, cache, breakdown)
    weights = sum(mat.nbytes for L in dm.layers for mat in (L.qkv, L.out, L.gate_up, L.down))
    weights += dm.output.nbytes if dm.output is not None else 0
    # the same step without the graph: kernels launched one by one from Python
    x = np.zeros((1, m.cfg.n_embd), np.float32)
    start = cache.n_past
    t0 = time.perf_counter()
    for _ in range(10):
        dm.run(cache, x, start, False)
    eager = (time.perf_counter() - t0) / 10
    return {"name": name, "tok_s": 1 / wall, "wall_ms": 1e3 * wall, "gpu_ms": 1e3 * gpu,
            "host_us": 1e6 * (wall - gpu), "weights_gb": weights / 1e9, "gbs": weights / gpu / 1e9,
            "eager_ms": 1e3 * eager, "ops": ops, "times": times}


def prefill_speed(path: str, T: int = 512, reps: int = 3) -> float:
    from chord_core.model import Model
    m = Model.load(path, backend="cuda")
    ids = [int(i) for i in np.random.default_rng(1).integers(3, m.n_vocab, T)]
    m.eval(ids, m.new_cache(T + 8))  # warm: compile, cuBLAS heuristics
    times = []
    for _ in range(reps):
        cache = m.new_cache(T + 8)
        t0 = time.perf_counter()
        m.eval(ids, cache)
        times.append(time.perf_counter() - t0)
    return T / float(np.median(times))


def speed(args, ceiling: float) -> None:
    section("Speed")
    big = args.big
    if big is None and args.make_big:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_random_gguf.py"), "--preset", "mistral-7b",
                        "--quant", "Q4_K_M", "--out", args.make_big], check=True)
        big = str(next(Path(args.make_big).glob("*.gguf")))
        emit(f"- generated {Path(big).name} ({os.path.getsize(big) / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s")
    if big:  # the step's operations, and the GEMV shapes that serve it best
        import cuda_step_breakdown
        from chord_core.backend.cuda import matrices, sources
        r = decode_speed("random Mistral-7B shape Q4_K_M", big, breakdown=ceiling)
        emit("\nDecode step of the random Mistral-7B shape, operation by operation (each kind captured alone):\n")
        emit("\n".join(r["ops"]))
        for many, shape in cuda_step_breakdown.fastest_shapes(r["times"]).items():
            for t in sources.Q8_DECODERS:
                matrices.GEMV_Q8_SHAPE[t, many] = shape
            emit(f"- 8-bit GEMV shape kept for {'many' if many else 'few'} rows: R, U, KS = {shape}")
        emit("")
    emit("| model | decode tok/s | wall ms/token | GPU ms/token (graph) | host overhead us/token | "
         "weights GB | GB/s | % of copy ceiling | step without graph ms |")
    emit("|---|---|---|---|---|---|---|---|---|")
    models = [(n, p) for n, p in (("SmolLM2 135M Q4_1", args.smollm), ("Gemma 3 270M Q4_K_M", args.gemma),
                                  ("random Mistral-7B shape Q4_K_M", big)) if p]
    for name, path in models:
        try:
            r = decode_speed(name, path)
            emit(f"| {name} | {r['tok_s']:.0f} | {r['wall_ms']:.3f} | {r['gpu_ms']:.3f} | {r['host_us']:.0f} | "
                 f"{r['weights_gb']:.2f} | {r['gbs']:.0f} | {100 * r['gbs'] / ceiling:.0f} | {r['eager_ms']:.2f} |")
        except Exception as e:  # noqa: BLE001
            emit(f"| {name} | ERROR {type(e).__name__}: {e} |")
            traceback.print_exc()
    for name, path in models:
        try:
            emit(f"- prefill of 512 tokens, {name}: {prefill_speed(path):.0f} tok/s")
        except Exception as e:  # noqa: BLE001
            emit(f"- prefill {name}: ERROR {type(e).__name__}: {e}")
            traceback.print_exc()


def real(args) -> None:
    section("Real models against llama.cpp (bars: top-1 >= 0.95, perplexity within 0.5 %, |dlogprob| <= 0.15)")
    emit("| model | top-1 | perplexity | mean abs dlogprob top-10 | ok | 512-token scoring tok/s |")
    emit("|---|---|---|---|---|---|")
    for name, path, ref in (("SmolLM2-135M-Instruct Q4_1", args.smollm, "SmolLM2-135M-Instruct.Q4_1.json"),
                            ("gemma-3-270m Q4_K_M", args.gemma, "gemma-3-270m-q4_k_m.json")):
        if not path:
            emit(f"| {name} | not measured: model file not on this machine | | | | |")
            continue
        try:
            fidelity(name, path, str(REF / ref))
        except Exception as e:  # noqa: BLE001
            emit(f"| {name} | ERROR {type(e).__name__}: {e} | | | | |")
            traceback.print_exc()


def cli(args) -> None:
    section("chord-chat on the cuda backend")
    model = args.smollm or str(REF / "tiny" / "tiny-llama-Q4_K_M.gguf")
    cmd = [sys.executable, "-m", "chord_tui", "run", model, "Name three colours.", "--backend", "cuda", "-n", "24"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    emit(f"- `chord-chat run {Path(model).name} {' '.join(cmd[5:])}` rc={r.returncode}\n\n```\n{r.stdout.strip()[:800]}\n"
         f"{r.stderr.strip()[-600:]}\n```")
    import cuda_serve_session
    emit(cuda_serve_session.run(model))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--smollm")
    ap.add_argument("--gemma")
    ap.add_argument("--big")
    ap.add_argument("--make-big")
    ap.add_argument("--sections", default="env,bandwidth,kernels,tiny,real,speed,cli")
    args = ap.parse_args()
    want = set(args.sections.split(","))
    ceiling = 3000.0
    steps = [("env", env), ("bandwidth", None), ("kernels", kernels), ("tiny", tiny), ("real", lambda: real(args)),
             ("speed", lambda: speed(args, ceiling)), ("cli", lambda: cli(args))]
    for key, fn in steps:
        if key not in want:
            continue
        t0 = time.perf_counter()
        try:
            if key == "bandwidth":
                ceiling = bandwidth()
            else:
                fn()
        except Exception as e:  # noqa: BLE001
            emit(f"\n**{key} failed: {type(e).__name__}: {e}**")
            traceback.print_exc()
        print(f"[{key}: {time.perf_counter() - t0:.1f} s]", flush=True)
        Path(args.out, "cuda_check.md").write_text("\n".join(rows) + "\n")
    print("\n\n==== TABLE ====\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
