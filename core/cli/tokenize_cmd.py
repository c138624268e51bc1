"""`chord-chat tokenize MODEL TEXT [--special] [--no-bos]`: ids as JSON."""

from __future__ import annotations

import json

from .common import add_model_arg, load_model


def register(sub) -> None:
    p = sub.add_parser("tokenize", help="print the token ids of TEXT as JSON")
    add_model_arg(p)
    p.add_argument("text")
    p.add_argument("--special", action="store_true", help="parse special-token text as tokens")
    p.add_argument("--no-bos", action="store_true", help="do not add BOS even if the model asks for it")
    p.set_defaults(func=run)


def run(args) -> int:
    model = load_model(args.model)
    ids = model.tokenize(args.text, add_special=not args.no_bos, parse_special=args.special)
    print(json.dumps(ids))
    return 0
