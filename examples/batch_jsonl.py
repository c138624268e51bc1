"""Batch inference over a JSONL file: several requests generating at once, answers in order.

    python examples/batch_jsonl.py [MODEL [IN.jsonl [OUT.jsonl [PARALLEL]]]]

Without IN.jsonl a few questions are written to questions.jsonl first. Each
line is {"messages": [...]} or {"prompt": "..."}, with an optional "id" and
sampler settings; the same as `chord-chat batch MODEL IN.jsonl -o OUT.jsonl`.
Run it again after stopping it and it goes on where it stopped.
"""

import json
import sys
from pathlib import Path

from chord_core import Model, SamplerSettings, batch_file, resolve_model

args = sys.argv[1:] + [None] * 4
model = Model.load(resolve_model(args[0] or "SmolLM2-135M-Instruct.Q4_1"))
source = Path(args[1] or "questions.jsonl")
target = Path(args[2] or "answers.jsonl")
if args[1] is None:
    questions = ["What is the boiling point of water?", "Name a mammal that flies.", "What colour is the sky?",
                 "How many legs does a spider have?"]
    source.write_text("".join(json.dumps({"id": f"q{i}", "messages": [{"role": "user", "content": q}], "seed": i})
                              + "\n" for i, q in enumerate(questions)))

summary = batch_file(model, source, target, parallel=int(args[3] or 4), defaults=SamplerSettings(max_tokens=24))
for line in target.read_text().splitlines():
    answer = json.loads(line)
    print(f"{answer['id']}: {answer.get('text', '').strip()!r}" if "error" not in answer
          else f"{answer['id']}: error: {answer['error']}")
print(f"[{summary.answered} answered now, {summary.skipped} earlier, {summary.errors} failed; "
      f"{summary.generated_tokens} tokens at {summary.tok_s:.0f} tok/s]")
