"""`chord-chat models` (not written yet)."""


def register(sub) -> None:
    p = sub.add_parser("models", help="(not written yet)")
    p.set_defaults(func=lambda args: 2)
