"""chord-chat beside llama.cpp, in the same run, on the same machine.

    python benchmarks/compare.py --llama-python /path/to/venv/bin/python MODEL [MODEL ...]

MODEL is a library name or a .gguf path. Each engine runs in its own fresh
process (cold load), llama.cpp first. Prints a Markdown table of both and
the chord-chat / llama.cpp ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def _run(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ}).stdout
    return json.loads(out.strip().splitlines()[-1])


def _median(runs: list[dict]) -> dict:
    keys = ("load_s", "prefill_tok_s", "decode_tok_s", "peak_rss_mb")
    return {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in keys}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-python", required=True, help="an interpreter with llama-cpp-python installed")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine, alternating; medians reported")
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from chord_core.library import resolve_model

    rows = []
    for spec in args.models:
        path = str(resolve_model(spec))
        refs, ourss = [], []
        for _ in range(args.repeat):  # alternate, so a busy moment hits both engines alike
            refs.append(_run([args.llama_python, str(HERE / "llama_cpp_bench.py"), path]))
            ourss.append(_run([sys.executable, "-m", "chord_tui", "bench", path, "--json"]))
        rows.append((Path(path).name, _median(ourss), _median(refs)))
    print("| model | metric | chord-chat | llama.cpp | ratio |")
    print("|---|---|---|---|---|")
    for name, ours, ref in rows:
        for key, label in (("load_s", "cold load (s)"), ("prefill_tok_s", "prefill 512 (tok/s)"),
                           ("decode_tok_s", "decode 128 (tok/s)"), ("peak_rss_mb", "peak RSS (MB)")):
            ratio = ours[key] / ref[key] if ref[key] else float("nan")
            print(f"| {name} | {label} | {ours[key]} | {ref[key]} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
