"""The ``chord-chat`` command: the TUI by default, engine verbs as subcommands.

Engine verbs live in ``chord_core.cli``; Textual is imported only for the
chat UI so that ``chord-chat tokenize`` and friends start fast.
"""

from __future__ import annotations

import argparse
import os
import sys

from chord_core.errors import ChordError

ENGINE_COMMANDS = ("tokenize", "perplexity", "bench", "run", "batch", "models", "serve")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chord-chat")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from chord_core.cli.common import add_engine_args
    from chord_core.cli.speculation_option import add_speculation_args

    parser = argparse.ArgumentParser(prog="chord-chat", description="Chat with local GGUF models in the terminal.")
    parser.add_argument("--version", action="version", version=f"chord-chat {_version()}")
    sub = parser.add_subparsers(dest="command")
    chat = sub.add_parser("chat", help="open the chat UI (the default)")
    chat.add_argument("model", nargs="?", help="library name or .gguf path")
    add_engine_args(chat)
    add_speculation_args(chat)
    for name in ENGINE_COMMANDS:
        importlib.import_module(f"chord_core.cli.{name}_cmd").register(sub)
    from chord_tui import web

    web.register(sub)
    return parser


def check_chat_model(spec: str) -> None:
    """A name or path that is no model: say so here, in one line, not in the UI. A remote
    entry is a model too; whether its server answers is the UI's to show."""
    from chord_core.library import get_remote, resolve_model

    if get_remote(spec) is None:
        resolve_model(spec)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse gives an optional positional its (empty) turn right after MODEL,
    # so `run MODEL --seed 7 "Hi"` leaves "Hi" over: it is the prompt
    if extra and getattr(args, "command", None) == "run" and args.prompt is None and not extra[0].startswith("-"):
        args.prompt, extra = extra[0], extra[1:]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command in (None, "chat"):
            from chord_core.cli.common import engine_options
            from chord_core.cli.speculation_option import check_speculation_args
            from chord_core.library import resolve_model
            from chord_tui.launch import launch

            if getattr(args, "model", None):
                check_chat_model(args.model)
            chat = args.command == "chat"
            speculation = check_speculation_args(args) if chat else None  # bad numbers: one line, before the UI
            if chat and args.draft:
                resolve_model(args.draft)
            return launch(getattr(args, "model", None), engine_options(args) if chat else None,
                          speculation=speculation, draft=args.draft if chat else None,
                          lookup_given=chat and args.lookup is not None)
        return int(args.func(args) or 0)
    except ChordError as err:
        print(f"chord-chat: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chord-chat: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # a file or directory the command could not use
        where = f"{err.filename}: " if err.filename else ""
        print(f"chord-chat: error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except Exception as err:  # a bug, still one line; CHORD_DEBUG=1 shows the traceback
        if os.environ.get("CHORD_DEBUG"):
            raise
        print(f"chord-chat: internal error: {type(err).__name__}: {err} (set CHORD_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
