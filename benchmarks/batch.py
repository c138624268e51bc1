"""Aggregate speed of ``chord-chat batch`` at several --parallel settings.

    python benchmarks/batch.py                                  # SmolLM2, 16 prompts, --parallel 1 4 8
    python benchmarks/batch.py MODEL --parallel 1 2 4 8 --reps 3 --max-tokens 64 --json out.json

The same 16 chat prompts (seeded, a fixed reply limit) at each setting;
each repetition runs every setting once, one after the other, so a busy
machine slows them alike. Aggregate tok/s is every generated token over
the wall time of the whole batch (prompts evaluated, replies decoded,
answers written); medians over the repetitions. Every setting must give
the same answers (same tokens) as --parallel 1: batching changes speed,
not replies.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from chord_core import Model, SamplerSettings, batch_file, resolve_model

TOPICS = ["the moon", "volcanoes", "bees", "the ocean", "trains", "chess", "rain", "bread", "owls", "glass",
          "music", "maps", "salt", "bicycles", "clocks", "snow"]


def write_prompts(path: Path, n: int) -> None:
    lines = [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Tell me three facts about {TOPICS[i % 16]}."}],
              "seed": i} for i in range(n)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def one_run(model: Model, source: Path, parallel: int, max_tokens: int, workdir: Path) -> tuple[float, int, list, float]:
    out = workdir / f"out-{parallel}-{time.monotonic_ns()}.jsonl"
    t0 = time.perf_counter()
    summary = batch_file(model, source, out, parallel=parallel, n_ctx=1024,
                         defaults=SamplerSettings(max_tokens=max_tokens))
    wall = time.perf_counter() - t0
    answers = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert summary.errors == 0, [a.get("error") for a in answers]
    return wall, summary.generated_tokens, [a["token_ids"] for a in answers], summary.mean_batch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="SmolLM2-135M-Instruct.Q4_1")
    ap.add_argument("--parallel", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path, help="write the measurements here too")
    args = ap.parse_args()
    model = Model.load(resolve_model(args.model), threads=args.threads)
    walls: dict[int, list[float]] = {p: [] for p in args.parallel}
    tokens: dict[int, int] = {}
    mean_batch: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source = workdir / "prompts.jsonl"
        write_prompts(source, args.prompts)
        reference = None
        for rep in range(args.reps):
            for parallel in args.parallel:
                wall, generated, ids, mean_batch[parallel] = one_run(model, source, parallel, args.max_tokens, workdir)
                reference = reference or ids
                if ids != reference:
                    print(f"--parallel {parallel}: answers differ from --parallel {args.parallel[0]}'s", file=sys.stderr)
                    return 1
                walls[parallel].append(wall)
                tokens[parallel] = generated
                print(f"rep {rep + 1} --parallel {parallel}: {generated} tokens in {wall:.2f} s", file=sys.stderr)
    base = statistics.median(walls[args.parallel[0]])
    rows = []
    print(f"\n{model.info.name}, {args.prompts} prompts, up to {args.max_tokens} tokens each, "
          f"{model.backend_name} backend, {model.threads} threads, medians of {args.reps}\n")
    print("| --parallel | wall s | tokens | aggregate tok/s | speed-up | replies per decode step |")
    print("|---:|---:|---:|---:|---:|---:|")
    for parallel in args.parallel:
        wall = statistics.median(walls[parallel])
        rows.append({"parallel": parallel, "wall_s": wall, "tokens": tokens[parallel],
                     "tok_s": tokens[parallel] / wall, "speedup": base / wall, "walls": walls[parallel],
                     "mean_batch": mean_batch[parallel]})
        print(f"| {parallel} | {wall:.2f} | {tokens[parallel]} | {tokens[parallel] / wall:.1f} | {base / wall:.2f}x "
              f"| {mean_batch[parallel]:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"model": model.info.name, "backend": model.backend_name,
                                         "threads": model.threads, "prompts": args.prompts,
                                         "max_tokens": args.max_tokens, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
