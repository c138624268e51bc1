"""Greedy continuations: chord-chat, llama.cpp on this machine, and the
recorded reference, side by side.

    python benchmarks/greedy_llama_cpp.py --llama-python /path/to/venv/bin/python MODEL REFERENCE.json

Runs llama.cpp (through llama-cpp-python, a dev tool) on the reference's
greedy prompts the way make_reference.py did, then chord-chat, and prints,
per prompt, how many tokens each pair agrees on before the first
difference. Near-ties make even two llama.cpp builds disagree, so the
llama.cpp-here column is the yardstick for the chord-chat columns.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

LLAMA_SIDE = """
import json, sys, numpy as np
from llama_cpp import Llama
path, ref_path, out = sys.argv[1:4]
ref = json.load(open(ref_path))
llm = Llama(model_path=path, n_ctx=4096, n_batch=512, n_threads=2, logits_all=True, verbose=False)
res = []
for case in ref["greedy"]:
    llm.reset(); llm.eval(case["prompt_ids"]); gen = []
    for _ in range(len(case["ids"])):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1])); gen.append(tok)
        if tok == llm.token_eos(): break
        llm.eval([tok])
    res.append(gen)
json.dump(res, open(out, "w"))
"""


def prefix_len(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-python", required=True)
    ap.add_argument("model")
    ap.add_argument("reference")
    args = ap.parse_args()
    from chord_core import Model
    from chord_core.library import resolve_model

    path = str(resolve_model(args.model))
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([args.llama_python, "-c", LLAMA_SIDE, path, args.reference, out.name], check=True,
                       stderr=subprocess.DEVNULL)
        here = json.load(open(out.name))
    ref = json.load(open(args.reference))
    model = Model.load(path)
    print("| prompt | ours vs reference | ours vs llama.cpp here | llama.cpp here vs reference | tokens |")
    print("|---|---|---|---|---|")
    for case, theirs in zip(ref["greedy"], here):
        cache = model.new_cache(len(case["prompt_ids"]) + len(case["ids"]) + 1)
        logits = model.eval(case["prompt_ids"], cache)
        ours = []
        for _ in range(len(case["ids"])):
            tok = int(logits.argmax())
            ours.append(tok)
            if tok == model.tokenizer.eos_id:
                break
            logits = model.eval([tok], cache)
        prompt = json.dumps(case["prompt"][:28])
        print(f"| {prompt} | {prefix_len(ours, case['ids'])} | {prefix_len(ours, theirs)} | "
              f"{prefix_len(theirs, case['ids'])} | {len(case['ids'])} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
