"""``chord-chat models`` for remote models: add-remote, and their rows in list, show and rm.

A remote entry names a model on an OpenAI-compatible server (see
chord_core/library/remote.py); nothing here contacts the server: adding
one while it is down is fine, and using it is where a dead server shows.
"""

from __future__ import annotations

import os
import sys

from ..errors import ChordError
from ..library.remote import RemoteEntry, describe_remote

NOTHING = "-"


def register(verbs) -> None:
    add = verbs.add_parser("add-remote", help="add a model served by an OpenAI-compatible server (by URL)",
                           description="Add a model on an OpenAI-compatible server (chord-chat serve, llama-server, "
                                       "Ollama, vLLM) to the library; `run NAME` and `chat NAME` then use it.")
    add.add_argument("name", help="library name for it")
    add.add_argument("url", help="the API's base URL, e.g. http://127.0.0.1:8080/v1 (a bare host:port gets /v1)")
    add.add_argument("--model", metavar="ID",
                     help="the model id to ask the server for (default: the one it serves, from its /v1/models)")
    add.add_argument("--api-key-env", metavar="VAR",
                     help="the environment variable that holds the API key (its name is stored, never the key)")


def add(args) -> int:
    from ..library import add_remote

    entry = add_remote(args.name, args.url, model=args.model, api_key_env=args.api_key_env)
    print(f"added {entry.name}: remote, {describe_remote(entry)}")
    if entry.api_key_env and entry.api_key_env not in os.environ:
        print(f"chord-chat: note: ${entry.api_key_env} is not set here; set it before using {entry.name}",
              file=sys.stderr)
    return 0


def list_rows(remotes: list[RemoteEntry]) -> list[list[str]]:
    """``models list`` rows, in its columns: marker, name, arch, params, quant, size, context, kind, source."""
    return [["", e.name, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, "remote",
             e.url + (f" ({e.model})" if e.model else "")] for e in remotes]


def show(entry: RemoteEntry) -> int:
    lines = [f"name:           {entry.name}",
             "kind:           remote (an OpenAI-compatible server)",
             f"url:            {entry.url}",
             f"model id:       {entry.model or 'the one the server serves (from its /v1/models)'}",
             f"api key:        {'from $' + entry.api_key_env if entry.api_key_env else 'none sent'}",
             f"added:          {entry.added}",
             f"last used:      {entry.last_used or 'never'}"]
    print("\n".join(lines))
    return 0


def rm(entry: RemoteEntry, assume_yes: bool) -> int:
    from ..library import remove_remote

    if not assume_yes and not sys.stdin.isatty():
        raise ChordError(f"not removing {entry.name}: stdin is not a terminal, so there is no one to ask; "
                         "pass --yes to remove it without asking")
    if not assume_yes:
        answer = input(f"Remove the remote model {entry.name} ({entry.url})? Nothing on disk is deleted. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    removed = remove_remote(entry.name)
    print(f"removed {removed.name} (a remote model: nothing on disk was deleted)")
    return 0
