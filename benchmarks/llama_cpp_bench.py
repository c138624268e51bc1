"""Measure llama.cpp (through llama-cpp-python) the way `chord-chat bench` measures
chord-chat: load time, then after one untimed warm-up step, prefill of N random
tokens and decode of M tokens, each on top of D tokens of context evaluated
first and not timed (llama-bench's -d).

Run with an interpreter that has llama-cpp-python (a dev tool, never a
dependency of chord-chat):

    python benchmarks/llama_cpp_bench.py MODEL.gguf [-p 512] [-n 128] [-d 0] [--threads 2] [--kv-type f16]

Prints one JSON object with the same keys as `chord-chat bench --json`.
"""

import argparse
import json
import resource
import time

import llama_cpp
import numpy as np
from llama_cpp import Llama

GGML_TYPES = {"f32": 0, "f16": 1}  # ggml type ids of the KV cache


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("-p", "--prompt-tokens", type=int, default=512)
    ap.add_argument("-n", "--gen-tokens", type=int, default=128)
    ap.add_argument("-d", "--depth", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kv-type", choices=sorted(GGML_TYPES), default="f16")
    ap.add_argument("--flash-attn", action="store_true", help="llama.cpp's flash attention (off by default here)")
    args = ap.parse_args()
    n_prompt, n_gen, depth = args.prompt_tokens, args.gen_tokens, args.depth

    t0 = time.perf_counter()
    llm = Llama(model_path=args.model, n_ctx=depth + n_prompt + n_gen + 16, n_batch=512, n_threads=args.threads,
                n_threads_batch=args.threads, type_k=GGML_TYPES[args.kv_type], type_v=GGML_TYPES[args.kv_type],
                flash_attn=args.flash_attn, verbose=False)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    context = rng.integers(0, llm.n_vocab(), depth).tolist()
    prompt = rng.integers(0, llm.n_vocab(), n_prompt).tolist()
    llm.eval([llm.token_bos()])  # warm-up, untimed, as `chord-chat bench` does
    llm.n_tokens = 0
    if context:
        llm.eval(context)
    t0 = time.perf_counter()
    llm.eval(prompt)
    prefill_s = time.perf_counter() - t0
    llm.n_tokens = depth  # the next eval drops the prompt's cache entries: decode runs on the context alone
    tok = llm.token_bos()
    n_vocab = llm.n_vocab()
    t0 = time.perf_counter()
    for _ in range(n_gen):
        llm.eval([tok])
        # llm.scores is left unfilled without logits_all: read the context's last row
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
        tok = int(np.argmax(logits))
    decode_s = time.perf_counter() - t0
    print(json.dumps({
        "model": args.model.rsplit("/", 1)[-1], "load_s": round(load_s, 3),
        "prefill_tok_s": round(n_prompt / prefill_s, 2), "decode_tok_s": round(n_gen / decode_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "prefill_tokens": n_prompt, "decode_tokens": n_gen, "depth": depth, "backend": "llama.cpp",
        "threads": args.threads, "kv_type": args.kv_type, "flash_attn": args.flash_attn,
    }))


if __name__ == "__main__":
    main()
