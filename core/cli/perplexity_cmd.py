"""`chord-chat perplexity MODEL FILE [--ctx N]`, like llama-perplexity."""

from __future__ import annotations

from pathlib import Path

from ..errors import ChordError
from .common import add_engine_args, add_model_arg, load_model
from .context_option import check_ctx, warn_above_training_context


def register(sub) -> None:
    p = sub.add_parser("perplexity", help="perplexity of a text file, scored as llama-perplexity does")
    add_model_arg(p)
    add_engine_args(p)
    p.add_argument("file", type=Path)
    p.add_argument("--ctx", type=int, default=512, help="chunk size in tokens (default 512)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..perplexity import perplexity

    check_ctx(args.ctx)  # the same floor as run: half a chunk is context, the rest is scored
    try:
        text = args.file.read_text(encoding="utf-8")
    except OSError as e:
        raise ChordError(f"{args.file}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ChordError(f"{args.file}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    model = load_model(args.model, args)
    warn_above_training_context(model, args.ctx)
    try:
        res = perplexity(model, text, n_ctx=args.ctx)
    except ValueError as e:
        raise ChordError(f"{args.file}: {e}") from None
    for i, p in enumerate(res.chunk_ppl, 1):
        print(f"[{i}]{p:.4f}", end=" ", flush=True)
    print()
    print(f"Final estimate: PPL = {res.perplexity:.4f} ({res.n_scored} tokens scored in {res.n_chunks} chunks of {args.ctx})")
    return 0
