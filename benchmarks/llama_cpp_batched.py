"""llama.cpp's own batched decode, for comparison with concurrent_decode.py:
B sequences, each with its own prompt, decoded one token each per
``llama_decode`` call (one batch of B rows), as llama-server does with
``--parallel B``. Reports aggregate decode tok/s per B and the ratio to
B = 1, each repetition running every B one after the other (medians).

Run with an interpreter that has llama-cpp-python (a dev tool, never a
dependency of chord-chat):

    /work/llamavenv/bin/python benchmarks/llama_cpp_batched.py MODEL.gguf --streams 1 2 4 8 --reps 3
"""

import argparse
import ctypes
import json
import statistics
import time

import llama_cpp as L
import numpy as np


def open_context(model_path: str, n_seq: int, n_ctx: int, threads: int):
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    model = L.llama_model_load_from_file(model_path.encode(), mp)
    cp = L.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = n_ctx, 512, 512, n_seq
    cp.n_threads = cp.n_threads_batch = threads
    cp.type_k = cp.type_v = 1  # F16 KV cache, llama.cpp's default
    ctx = L.llama_init_from_model(model, cp)
    return model, ctx


def decode_streams(ctx, model, n_streams: int, prompt_len: int, n_tokens: int, rng) -> float:
    """Prefill each stream (untimed), then n_tokens steps of one token per
    stream in one batch; returns decode tok/s over all streams."""
    L.llama_memory_clear(L.llama_get_memory(ctx), True)
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    batch = L.llama_batch_init(max(prompt_len, n_streams), 0, n_streams)
    last = []
    for s in range(n_streams):
        prompt = rng.integers(100, n_vocab - 100, prompt_len)
        batch.n_tokens = prompt_len
        for i, t in enumerate(prompt):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = int(t), i, 1
            batch.seq_id[i][0] = s
            batch.logits[i] = i == prompt_len - 1
        assert L.llama_decode(ctx, batch) == 0
        logits = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
        last.append(int(logits.argmax()))
    t0 = time.perf_counter()
    for step in range(n_tokens):
        batch.n_tokens = n_streams
        for s in range(n_streams):
            batch.token[s], batch.pos[s], batch.n_seq_id[s] = last[s], prompt_len + step, 1
            batch.seq_id[s][0] = s
            batch.logits[s] = True
        assert L.llama_decode(ctx, batch) == 0
        for s in range(n_streams):
            logits = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, s), shape=(n_vocab,))
            last[s] = int(logits.argmax())  # greedy, as concurrent_decode.py
    dt = time.perf_counter() - t0
    L.llama_batch_free(batch)
    return n_streams * n_tokens / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    n_seq = max(args.streams)
    model, ctx = open_context(args.model, n_seq, n_seq * (args.prompt + args.tokens + 8), args.threads)
    rng = np.random.default_rng(0)
    runs = {b: [] for b in args.streams}
    for _ in range(args.reps):
        for b in args.streams:
            runs[b].append(decode_streams(ctx, model, b, args.prompt, args.tokens, rng))
    base = statistics.median(runs[args.streams[0]])
    print(f"llama.cpp {L.__version__}, {args.threads} threads, {args.tokens} tokens per stream, medians of {args.reps}")
    print("| streams | decode tok/s | ratio |\n|---:|---:|---:|")
    for b in args.streams:
        m = statistics.median(runs[b])
        print(f"| {b} | {m:.1f} | {m / base:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({str(b): v for b, v in runs.items()}, f)


if __name__ == "__main__":
    main()
