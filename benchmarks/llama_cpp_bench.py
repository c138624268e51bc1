"""Measure llama.cpp (through llama-cpp-python) the way `chord-chat bench` measures
chord-chat: load time, prefill of N random tokens, decode of M tokens, 2 threads.

Run with an interpreter that has llama-cpp-python (a dev tool, never a
dependency of chord-chat):  python benchmarks/llama_cpp_bench.py MODEL.gguf
Prints one JSON object with the same keys as `chord-chat bench --json`.
"""

import json
import resource
import sys
import time

import numpy as np
from llama_cpp import Llama


def main(path: str, n_prompt: int = 512, n_gen: int = 128, threads: int = 2) -> None:
    t0 = time.perf_counter()
    llm = Llama(model_path=path, n_ctx=n_prompt + n_gen + 16, n_batch=512, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, llm.n_vocab(), n_prompt).tolist()
    t0 = time.perf_counter()
    llm.eval(prompt)
    prefill_s = time.perf_counter() - t0
    llm.reset()
    tok = llm.token_bos()
    t0 = time.perf_counter()
    for _ in range(n_gen):
        llm.eval([tok])
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    decode_s = time.perf_counter() - t0
    print(json.dumps({
        "model": path.rsplit("/", 1)[-1], "load_s": round(load_s, 3),
        "prefill_tok_s": round(n_prompt / prefill_s, 2), "decode_tok_s": round(n_gen / decode_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main(sys.argv[1])
