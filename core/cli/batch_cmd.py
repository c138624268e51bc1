"""`chord-chat batch MODEL IN.jsonl [-o OUT.jsonl] [--parallel N]`: many requests, batched.

Each input line is a request (see batch_io.py); each output line its
answer, in input order, written as soon as it and all before it are done.
With -o, a rerun after a kill resumes: the answers already in OUT.jsonl
are kept and only the rest are generated.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ChordError
from ..sampling import DEFAULT_MAX_TOKENS, SamplerSettings
from .common import add_engine_args, add_model_arg, load_model
from .context_option import check_ctx, warn_above_training_context

DEFAULT_PARALLEL = 4


def register(sub) -> None:
    p = sub.add_parser("batch", help="answer every request of a JSONL file, several at once")
    add_model_arg(p)
    p.add_argument("input", type=Path, metavar="IN.jsonl",
                   help="one request per line: {\"messages\": [...]} or {\"prompt\": \"...\"}, optional \"id\" "
                        "and sampler settings (temperature, seed, max_tokens, stop, ...)")
    p.add_argument("-o", "--output", type=Path, metavar="OUT.jsonl",
                   help="answers file (default: stdout); if it exists, the run resumes after its last answer")
    p.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL,
                   help=f"requests generated at once, their decode steps batched (default {DEFAULT_PARALLEL})")
    p.add_argument("-n", "--max-tokens", type=int, default=None,
                   help=f"reply limit of a line that sets none (default {DEFAULT_MAX_TOKENS}; -1: none)")
    p.add_argument("--ctx", type=int, default=None, help="context size of each slot (default: min(model, 4096))")
    p.add_argument("--template", help="fallback template name or a .jinja file, instead of the GGUF's")
    add_engine_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..batch import MAX_PARALLEL, batch_file

    check_ctx(args.ctx)
    if not 1 <= args.parallel <= MAX_PARALLEL:
        raise ChordError(f"--parallel must be between 1 and {MAX_PARALLEL}, got {args.parallel}")
    if not args.input.is_file():
        raise ChordError(f"{args.input}: no such file")
    if args.output is not None and args.output.resolve() == args.input.resolve():
        raise ChordError(f"{args.output}: the output would overwrite the input")
    max_tokens = DEFAULT_MAX_TOKENS if args.max_tokens is None else (None if args.max_tokens == -1 else args.max_tokens)
    defaults = SamplerSettings(max_tokens=max_tokens)
    model = load_model(args.model, args)
    warn_above_training_context(model, args.ctx)

    def write(line: str) -> None:
        sys.stdout.write(line)
        sys.stdout.flush()

    try:
        summary = batch_file(model, args.input, args.output, parallel=args.parallel, n_ctx=args.ctx,
                             template=args.template, defaults=defaults,
                             write=None if args.output else write)
    except KeyboardInterrupt:
        kept = f"; the answers written are kept in {args.output}: run the same command to resume" if args.output else ""
        print(f"chord-chat batch: interrupted{kept}", file=sys.stderr)
        return 130
    resumed = f", {summary.skipped} already done" if summary.skipped else ""
    print(f"chord-chat batch: {summary.answered} answered ({summary.errors} failed){resumed} of "
          f"{summary.requests}; {summary.generated_tokens} tokens in {summary.wall_s:.1f} s, "
          f"{summary.tok_s:.1f} tok/s at --parallel {args.parallel} ({summary.mean_batch:.1f} replies per "
          f"decode step on average)", file=sys.stderr)
    return 1 if summary.errors else 0
