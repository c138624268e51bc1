"""Prompt lookup replayed on recorded replies: no model runs, so a drafter
change is measured in seconds and on a busy machine.

    python benchmarks/lookup_replay.py record replies.json    # plain greedy replies to benchmarks/speculative.py's tasks
    python benchmarks/lookup_replay.py replay replies.json    # what PromptLookup makes of them

A greedy reply does not depend on the guesses, so a recorded one can be fed
to the drafter as the generator would: each check keeps the guesses that
match the reply and the reply's token after them. The replay counts the
forwards and the rows they evaluate and models the time with the lookup's
own row-cost table (prompt_lookup.CHECK_COST, measured on SmolLM2 on a quiet machine):
the modelled speed-up leaves out the time outside the forwards and load,
so it runs 5-20% above a measured one, but it ranks drafters the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import speculative  # noqa: E402 (the tasks and the models)

from chord_core.drafters import OFF  # noqa: E402
from chord_core.model import Model  # noqa: E402
from chord_core.prompt_lookup import CHECK_COST, PromptLookup  # noqa: E402


def record(out: Path, max_tokens: int, threads: int) -> None:
    replies = {}
    for path in (speculative.smollm2_path(), speculative.gemma_path()):
        model = Model.load(path, threads=threads)
        for task in speculative.TASKS:
            done, prompt = speculative.reply(model, task, OFF, max_tokens)
            replies[f"{model.info.name} | {task}"] = {"prompt": prompt, "reply": list(done.token_ids)}
            print(f"{model.info.name} | {task}: {len(done.token_ids)} tokens", flush=True)
    out.write_text(json.dumps(replies))


def replay(prompt: list[int], reply: list[int], draft_max: int = 16) -> dict:
    """Forwards, rows and kept guesses of ``reply`` (its first token came from the prompt's evaluation)."""
    lookup = PromptLookup()
    context, i = list(prompt) + reply[:1], 1
    forwards = rows = proposed = kept = 0
    cost = 0.0
    while i < len(reply):
        guesses = [d.id for d in lookup.propose(context, min(draft_max, len(reply) - i))]
        hit = 0
        while hit < len(guesses) and guesses[hit] == reply[i + hit]:
            hit += 1
        forwards, rows, proposed, kept = forwards + 1, rows + 1 + len(guesses), proposed + len(guesses), kept + hit
        cost += CHECK_COST[len(guesses)]
        step = min(hit + 1, len(reply) - i)
        context += reply[i:i + step]
        i += step
    plain = len(reply) - 1
    return {"tokens": len(reply), "forwards": forwards, "rows": rows, "kept": kept / proposed if proposed else 0.0,
            "modelled": plain / cost if cost else 1.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["record", "replay"])
    ap.add_argument("replies", type=Path)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--draft-max", type=int, default=16)
    args = ap.parse_args()
    if args.action == "record":
        record(args.replies, args.max_tokens, args.threads)
        return 0
    for name, r in json.loads(args.replies.read_text()).items():
        out = replay(r["prompt"], r["reply"], args.draft_max)
        copied = speculative.copied_share(r["prompt"], tuple(r["reply"]))
        print(f"{name:<50} {out['tokens']:>4} tok copied {copied:4.0%}  forwards {out['forwards']:>4} "
              f"rows {out['rows']:>4}  kept {out['kept']:4.0%}  modelled x{out['modelled']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
