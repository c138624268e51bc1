"""`chord-chat bench MODEL [--depth N] [--json]`: load time, prefill and decode speed, peak RSS."""

from __future__ import annotations

import json

from .common import add_engine_args, add_model_arg, engine_options


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure load time, prefill and decode tok/s, peak memory")
    add_model_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-p", "--prompt-tokens", type=int, default=512)
    p.add_argument("-n", "--gen-tokens", type=int, default=128)
    p.add_argument("-d", "--depth", type=int, default=0,
                   help="tokens of context evaluated first, untimed; prefill and decode run on top (llama-bench -d)")
    p.add_argument("-r", "--repeat", type=int, default=1, help="time each phase this many times; report medians")
    add_engine_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bench import run_bench

    r = run_bench(args.model, args.prompt_tokens, args.gen_tokens, depth=args.depth, repeat=args.repeat,
                  load_options=engine_options(args))
    if args.json:
        print(json.dumps({"model": r.model, "general_name": r.general_name, "load_s": round(r.load_s, 3),
                          "prefill_tok_s": round(r.prefill_tok_s, 2), "decode_tok_s": round(r.decode_tok_s, 2),
                          "peak_rss_mb": round(r.peak_rss_mb, 1),
                          "prefill_tokens": r.prefill_tokens, "decode_tokens": r.decode_tokens, "depth": r.depth,
                          "backend": r.backend, "threads": r.threads, "kv_type": r.kv_type,
                          "prefill_runs": [round(x, 2) for x in r.prefill_runs],
                          "decode_runs": [round(x, 2) for x in r.decode_runs]}))
    else:
        beside = f" (general.name: {r.general_name})" if r.general_name and r.general_name != r.model else ""
        after = f", after {r.depth} tokens of context" if r.depth else ""
        runs = f", median of {len(r.prefill_runs)}" if len(r.prefill_runs) > 1 else ""
        print(f"model    {r.model}{beside}")
        print(f"engine   {r.backend} backend, {r.threads} threads, {r.kv_type} KV cache")
        print(f"load     {r.load_s:.2f} s")
        print(f"prefill  {r.prefill_tok_s:.1f} tok/s ({r.prefill_tokens} tokens{after}{runs})")
        print(f"decode   {r.decode_tok_s:.1f} tok/s ({r.decode_tokens} tokens{after}{runs})")
        print(f"peak RSS {r.peak_rss_mb:.0f} MB")
    return 0
