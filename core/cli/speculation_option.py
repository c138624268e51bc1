"""``--draft MODEL``, ``--draft-max K``, ``--lookup N`` / ``--no-lookup``:
speculative decoding's options, shared by every verb that generates
(``run``, ``chat``, ``serve``)."""

from __future__ import annotations

import sys

from ..drafters import DEFAULT_DRAFT_MAX, DEFAULT_LOOKUP, MAX_DRAFT_MAX, Speculation, check_draft_model
from ..model import Model


def add_speculation_args(p) -> None:
    g = p.add_argument_group("speculative decoding (exact at temperature 0; the same distribution when sampling)")
    g.add_argument("--draft", metavar="MODEL",
                   help="a smaller model with the same vocabulary that guesses ahead (library name or .gguf path)")
    g.add_argument("--draft-max", type=int, default=DEFAULT_DRAFT_MAX, metavar="K",
                   help=f"at most K guessed tokens checked per forward, 1-{MAX_DRAFT_MAX} (default {DEFAULT_DRAFT_MAX})")
    g.add_argument("--lookup", type=int, default=None, metavar="N",  # None: not given (the TUI then uses its saved choice)
                   help=f"prompt lookup: guess what followed the reply's last tokens (2 or more, matches measured "
                        f"at least N back) where they appeared before in the prompt or reply, following a copy "
                        f"across the reply's edits, more guesses the longer it runs (default {DEFAULT_LOOKUP}; 0 off)")
    g.add_argument("--no-lookup", dest="lookup", action="store_const", const=0, help="no prompt lookup")


def check_speculation_args(args) -> Speculation:
    """The numbers checked (one-line errors) before any model is loaded."""
    return Speculation(lookup=DEFAULT_LOOKUP if args.lookup is None else args.lookup, draft_max=args.draft_max)


def speculation_for(args, target: Model, load_model) -> Speculation:
    """``args``' speculation for ``target``; ``load_model(spec, args)`` loads the
    draft, whose vocabulary is checked (a larger draft warns on stderr)."""
    speculation = check_speculation_args(args)
    if not getattr(args, "draft", None):
        return speculation
    draft = load_model(args.draft, args)
    warning = check_draft_model(target, draft)
    if warning:
        print(f"chord-chat: warning: {warning}", file=sys.stderr)
    return Speculation(lookup=speculation.lookup, draft_max=speculation.draft_max, draft_model=draft)
