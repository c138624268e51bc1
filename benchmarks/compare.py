"""chord-chat beside llama.cpp, in the same run, on the same machine.

    python benchmarks/compare.py MODEL [MODEL ...]
    python benchmarks/compare.py --depths 0 --repeat 1 -p 64 -n 16 SmolLM2-135M-Instruct.Q4_1   # a quick look

MODEL is a library name or a .gguf path. For every model and depth each
engine runs ``--repeat`` times in a fresh process (so every run is a cold
load with its own peak RSS), alternating llama.cpp and chord-chat so a busy
moment hits both alike; the table shows the medians and chord-chat /
llama.cpp ratios (above 1 is faster for the rates, larger for load and RSS).

Defaults are the issue's: 2 threads, prefill 512, decode 128, depths 0 and
2048 (each phase runs on top of that much context, llama-bench's -d), the KV
cache in F16 for both. llama.cpp runs through llama-cpp-python in the
interpreter ``--llama-python`` names (a dev tool, never a dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
DEFAULT_LLAMA_PYTHON = os.environ.get("LLAMA_PYTHON", "/work/llamavenv/bin/python")
METRICS = (("load_s", "cold load (s)"), ("prefill_tok_s", "prefill {p} (tok/s)"),
           ("decode_tok_s", "decode {n} (tok/s)"), ("peak_rss_mb", "peak RSS (MB)"))


def _run(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"compare: {' '.join(cmd[:4])} ... failed (exit {done.returncode}): {why}")
    return json.loads(lines[-1])


def _median(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k, _ in METRICS}


def _commands(args, path: str, depth: int) -> tuple[list[str], list[str]]:
    sizes = ["-p", str(args.prompt_tokens), "-n", str(args.gen_tokens), "-d", str(depth),
             "--threads", str(args.threads), "--kv-type", args.kv_type]
    llama = [args.llama_python, str(HERE / "llama_cpp_bench.py"), path, *sizes]
    if args.llama_flash_attn:
        llama.append("--flash-attn")
    ours = [sys.executable, "-m", "chord_tui", "bench", path, "--json", "--backend", args.backend, *sizes]
    return ours, llama


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")]
        cpu = f"{names[0]} x{len(names)}" if names else cpu
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    return f"{cpu}; chord-chat {commit}"


def _table(args, rows: list[tuple[str, int, dict, dict]]) -> str:
    out = [f"{_machine()}; {args.threads} threads, KV cache {args.kv_type}, llama.cpp flash attention "
           f"{'on' if args.llama_flash_attn else 'off'}; medians of {args.repeat} alternating runs", "",
           "| model | depth | metric | chord-chat | llama.cpp | ratio |", "|---|---|---|---|---|---|"]
    for name, depth, ours, ref in rows:
        for key, label in METRICS:
            label = label.format(p=args.prompt_tokens, n=args.gen_tokens)
            ratio = ours[key] / ref[key] if ref[key] else float("nan")
            out.append(f"| {name} | {depth} | {label} | {ours[key]:g} | {ref[key]:g} | {ratio:.2f}x |")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--llama-python", default=DEFAULT_LLAMA_PYTHON,
                    help=f"an interpreter with llama-cpp-python (default $LLAMA_PYTHON or {DEFAULT_LLAMA_PYTHON})")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine, alternating; medians reported")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-p", "--prompt-tokens", type=int, default=512)
    ap.add_argument("-n", "--gen-tokens", type=int, default=128)
    ap.add_argument("--depths", default="0,2048", help="comma-separated context depths (default 0,2048)")
    ap.add_argument("--kv-type", choices=("f16", "f32"), default="f16", help="both engines' KV cache type")
    ap.add_argument("--backend", default="auto", help="chord-chat's backend")
    ap.add_argument("--llama-flash-attn", action="store_true", help="llama.cpp with flash attention")
    ap.add_argument("--raw", type=Path, help="also write every run as JSON to this file")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    sys.path.insert(0, str(HERE.parent))
    from chord_core.library import resolve_model

    rows, raw = [], []
    for spec in args.models:
        path = str(resolve_model(spec))
        for depth in depths:
            ours_cmd, llama_cmd = _commands(args, path, depth)
            refs, ours = [], []
            for _ in range(args.repeat):
                refs.append(_run(llama_cmd))
                ours.append(_run(ours_cmd))
            raw.append({"model": path, "depth": depth, "chord_chat": ours, "llama_cpp": refs})
            rows.append((Path(path).stem, depth, _median(ours), _median(refs)))
            print(f"compare: {Path(path).name} at depth {depth} done", file=sys.stderr)
    if args.raw:
        args.raw.write_text(json.dumps(raw, indent=1))
    print(_table(args, rows))


if __name__ == "__main__":
    main()
