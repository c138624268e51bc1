"""Time to first token over an 8-turn chat on one session (KV prefix reuse).

    python benchmarks/multiturn_ttft.py [MODEL] [--turns 8] [--tokens 32]

Each turn sends the whole conversation; the session prefills only what
follows the longest common prefix with its cache, so TTFT should stay
near turn 1's as the conversation grows. Prints one line per turn and a
JSON summary.
"""

from __future__ import annotations

import argparse
import json

from chord_core import Model
from chord_core.events import Done, Started
from chord_core.library import resolve_model
from chord_core.sampling import SamplerSettings
from chord_core.session import ChatSession

QUESTIONS = [
    "What is the capital of France?", "Tell me one fact about it.", "How many people live there?",
    "Name a famous museum there.", "What is in that museum?", "Name a river in that city.",
    "What is a good food to try there?", "Thanks! Summarize our chat in one sentence.",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="SmolLM2-135M-Instruct.Q4_1")
    ap.add_argument("--turns", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    session = ChatSession(Model.load(resolve_model(args.model)))
    settings = SamplerSettings(temperature=0, max_tokens=args.tokens)
    msgs: list[dict] = []
    rows = []
    for turn in range(args.turns):
        msgs.append({"role": "user", "content": QUESTIONS[turn % len(QUESTIONS)]})
        started = done = None
        for ev in session.stream(msgs, settings):
            if isinstance(ev, Started):
                started = ev
            elif isinstance(ev, Done):
                done = ev
        msgs.append({"role": "assistant", "content": done.text})
        rows.append({"turn": turn + 1, "prompt_tokens": started.prompt_tokens, "reused": started.reused_tokens,
                     "ttft_s": round(done.stats.ttft_s, 4), "decode_tok_s": round(done.stats.decode_tok_s, 1)})
        print(f"turn {turn + 1}: prompt {started.prompt_tokens:4d} tokens, reused {started.reused_tokens:4d}, "
              f"TTFT {done.stats.ttft_s * 1000:7.1f} ms, decode {done.stats.decode_tok_s:5.1f} tok/s")
    print(json.dumps({"turns": rows, "ttft_ratio_last_first": round(rows[-1]["ttft_s"] / rows[0]["ttft_s"], 2)}))


if __name__ == "__main__":
    main()
