"""Record llama.cpp's seeded sampling on a model, as a test fixture.

    /path/to/llama-venv/bin/python scripts/record_seeded_llama_cpp.py MODEL.gguf OUT.json

llama-cpp-python (a dev tool, never a dependency) samples 32 tokens of a
chat prompt for seeds 1-20 with llama.cpp's default chain (top-k 40,
top-p 0.95, min-p 0.05, temperature 0.8). tests/test_seeded_parity.py
checks that chord_core, given the same seed, draws the same tokens.
"""

import json
import sys

from llama_cpp import Llama

PROMPT = "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n<|im_start|>assistant\n"
SETTINGS = dict(top_k=40, top_p=0.95, min_p=0.05, temp=0.8, repeat_penalty=1.0)
N_TOKENS = 32


def main(model_path: str, out_path: str) -> None:
    llm = Llama(model_path=model_path, n_ctx=2048, n_batch=512, n_threads=2, verbose=False)
    prompt_ids = llm.tokenize(PROMPT.encode(), add_bos=True, special=True)
    runs = {}
    for seed in range(1, 21):
        llm.set_seed(seed)
        llm.reset()
        ids = []
        for token in llm.generate(prompt_ids, **SETTINGS):
            ids.append(token)
            if token == llm.token_eos() or len(ids) >= N_TOKENS:
                break
        runs[str(seed)] = ids
    json.dump({"prompt": PROMPT, "prompt_ids": prompt_ids, "settings": SETTINGS, "runs": runs},
              open(out_path, "w"), indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
