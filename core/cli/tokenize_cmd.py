"""`chord-chat tokenize` (not written yet)."""


def register(sub) -> None:
    p = sub.add_parser("tokenize", help="(not written yet)")
    p.set_defaults(func=lambda args: 2)
