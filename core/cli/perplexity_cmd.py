"""`chord-chat perplexity` (not written yet)."""


def register(sub) -> None:
    p = sub.add_parser("perplexity", help="(not written yet)")
    p.set_defaults(func=lambda args: 2)
