"""``chord-chat models``: list, show, add, pull, rm and pick the default model."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ChordError

TEMPLATE_HEAD_LINES = 8


def register(sub) -> None:
    from . import models_remote

    p = sub.add_parser("models", help="manage the model library (list, show, add, add-remote, pull, rm, default)",
                       description="Manage the library of GGUF models (see docs/models.md).")
    verbs = p.add_subparsers(dest="models_verb", metavar="VERB")

    verbs.add_parser("list", help="table of the library's models (the default)")

    show = verbs.add_parser("show", help="metadata, chat template and tensors of a model")
    show.add_argument("name", help="library name (or a .gguf path)")

    add = verbs.add_parser("add", help="add a local .gguf file (any shard of a split model)")
    add.add_argument("path")
    add.add_argument("--name", help="library name (default: the file name without .gguf)")
    how = add.add_mutually_exclusive_group()
    how.add_argument("--link", dest="mode", action="store_const", const="link",
                     help="register the file where it is (the default)")
    how.add_argument("--copy", dest="mode", action="store_const", const="copy",
                     help="copy it into the library directory")
    how.add_argument("--move", dest="mode", action="store_const", const="move",
                     help="move it into the library directory")
    add.set_defaults(mode="link")

    models_remote.register(verbs)

    pull = verbs.add_parser("pull", help="download an http(s) URL or hf:OWNER/REPO/FILE.gguf")
    pull.add_argument("source")
    pull.add_argument("--name", help="library name (default: the file name without .gguf)")

    rm = verbs.add_parser("rm", help="remove a model (its file too if it is inside the library dir)")
    rm.add_argument("name")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    default = verbs.add_parser("default", help="set (or, without NAME, show) the default model")
    default.add_argument("name", nargs="?")

    p.set_defaults(func=run)


def run(args) -> int:
    verb = getattr(args, "models_verb", None) or "list"
    from . import models_remote

    return {"list": _list, "show": _show, "add": _add, "add-remote": models_remote.add, "pull": _pull, "rm": _rm,
            "default": _default}[verb](args)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _list(args) -> int:
    from ..library import discover, list_entries, list_remotes, registry
    from ..library.manage import choose_default
    from ..model_facts import BASE_MODEL_LABEL, format_params, format_size
    from .models_remote import list_rows

    discover(notify=lambda message: print(f"chord-chat: {message}", file=sys.stderr))
    entries = list_entries()
    remotes = list_remotes()
    if not entries and not remotes:
        print("No models yet. Add one with `chord-chat models add FILE.gguf` or "
              "`chord-chat models pull URL`.")
        return 0
    state = registry().load()
    default = choose_default(state)
    rows = [["", "NAME", "ARCH", "PARAMS", "QUANT", "SIZE", "CONTEXT", "KIND", "SOURCE"]]
    for e in entries:
        marker = "*" if e.name == default else ""
        name = e.name if e.files_present() else f"{e.name} (missing)"
        rows.append([marker, name, e.architecture, format_params(e.parameter_count), e.quant_type,
                     format_size(e.size), str(e.context_length or "?"), "chat" if e.has_chat_template else "base",
                     _short_source(e.source)])
    rows += [row[:-1] + [_short_source(row[-1])] for row in list_rows(remotes)]
    rows = rows[:1] + sorted(rows[1:], key=lambda r: r[1].lower())
    print(_table(rows))
    if not all(e.has_chat_template for e in entries):
        print(f"\nbase = {BASE_MODEL_LABEL} (no chat template; chat needs --template NAME|FILE)")
    why = "set with `models default`" if state.default == default else "the last or newest chat model"
    print(f"\n* default model ({why})")
    return 0


def _short_source(source: str) -> str:
    return source if len(source) <= 48 else "..." + source[-45:]


def _show(args) -> int:
    from ..library import get_entry, get_remote, validate_gguf
    from . import models_remote
    from ..model_facts import BASE_MODEL_LABEL, format_params, format_size

    path = Path(args.name).expanduser()
    entry = None
    if not path.is_file() and (remote := get_remote(args.name)) is not None:
        return models_remote.show(remote)
    if not path.is_file():
        entry = get_entry(args.name)
        path = Path(entry.path)
    summary = validate_gguf(path)
    out = []
    if entry is not None:
        out += [f"name:           {entry.name}", f"path:           {entry.path}"]
        if entry.is_split:
            out += [f"shards:         {len(entry.shards)}"] + [f"  {p}" for p in entry.shards[1:]]
        out += [f"size:           {format_size(entry.size)} ({entry.size} bytes)",
                f"sha256:         {entry.sha256}", f"source:         {entry.source}",
                f"added:          {entry.added}", f"last used:      {entry.last_used or 'never'}"]
    else:
        out += [f"path:           {path}", f"size:           {format_size(summary.size)}"]
    out += [f"architecture:   {summary.architecture}",
            f"parameters:     {format_params(summary.parameter_count)} ({summary.parameter_count})",
            f"quantization:   {summary.quant_type}",
            f"context length: {summary.context_length or '?'}", _memory_line(path), "", "metadata:"]
    for key in sorted(summary.metadata):
        if key.startswith("general.") or key.startswith(f"{summary.architecture}."):
            out.append(f"  {key} = {summary.metadata[key]}")
    out += ["", f"chat template:  {summary.chat_template_source if summary.chat_template else 'none'}"]
    if summary.chat_template:
        lines = summary.chat_template.splitlines()
        out += [f"  | {line[:120]}" for line in lines[:TEMPLATE_HEAD_LINES]]
        if len(lines) > TEMPLATE_HEAD_LINES:
            out.append(f"  | ... ({len(lines) - TEMPLATE_HEAD_LINES} more lines)")
    else:
        out.append(f"  {BASE_MODEL_LABEL} (none in the file: `run` completes the prompt as text; "
                   "chat needs --template NAME|FILE)")
    out += ["", f"tensors:        {summary.n_tensors}, {format_params(summary.parameter_count)} parameters"]
    out += [f"  {t:<8} {n}" for t, n in summary.tensor_types.items()]
    print("\n".join(out))
    return 0


def _memory_line(path: Path) -> str:
    from ..memory_estimate import estimate_for_file

    est = estimate_for_file(str(path))
    return (f"memory:         about {est.describe()} at a context of {est.n_ctx}, "
            f"{est.backend} backend, {est.kv_type} KV cache")


def _add(args) -> int:
    from ..library import add_model
    from ..model_facts import format_params, format_size

    if args.mode != "link":
        doing = {"copy": "copying", "move": "moving"}[args.mode]
        print(f"chord-chat: {doing} {args.path} into the library...", file=sys.stderr)
    entry = add_model(args.path, name=args.name, mode=args.mode)
    done = {"link": "registered in place", "copy": f"copied to {entry.path}", "move": f"moved to {entry.path}"}
    where = done[args.mode]
    print(f"added {entry.name}: {entry.architecture}, {format_params(entry.parameter_count)} parameters, "
          f"{entry.quant_type}, {format_size(entry.size)} ({where})")
    _warn_if_template_over_limits(entry)
    return 0


def _warn_if_template_over_limits(entry) -> None:
    """A model whose own chat template is a bomb is still added (its weights may be fine),
    with a warning now rather than a failed first message later."""
    from ..chat_template import ChatTemplate, ChatTemplateError, fallback_name_for
    from ..gguf_file import GGUFFile

    with GGUFFile(entry.path) as gguf:
        metadata = dict(gguf.metadata)
    try:
        ChatTemplate.for_model(metadata).check_limits()
    except ChatTemplateError as err:  # over its limits, or does not compile: the same advice
        print(f"chord-chat: warning: {err}; chat with a shipped template: --template {fallback_name_for(metadata)}",
              file=sys.stderr)


def _pull(args) -> int:
    from ..library import pull
    from ..library.progress import StderrProgress
    from ..model_facts import format_params, format_size

    # a redrawn bar only on a terminal: in a log or a pipe it would be noise glued to the error line
    bar = StderrProgress() if sys.stderr.isatty() else None

    def notify(message: str) -> None:
        if bar:
            bar.finish()  # the message gets a line of its own, the bar continues below it
        print(f"chord-chat: {message}", file=sys.stderr)

    try:
        entry = pull(args.source, name=args.name, progress=bar, notify=notify)
    except KeyboardInterrupt:
        if bar:
            bar.finish()
        print("chord-chat: download interrupted; the partial file is kept, run the same pull again "
              "to resume", file=sys.stderr)
        return 130
    except ChordError:
        if bar:
            bar.finish()
        raise
    if bar:
        bar.finish()
    print(f"pulled {entry.name}: {entry.architecture}, {format_params(entry.parameter_count)} parameters, "
          f"{entry.quant_type}, {format_size(entry.size)}, sha256 {entry.sha256}")
    _warn_if_template_over_limits(entry)
    return 0


def _rm(args) -> int:
    from ..library import get_entry, get_remote, remove_model
    from ..library.files import is_inside_library
    from . import models_remote

    if (remote := get_remote(args.name)) is not None:
        return models_remote.rm(remote, args.yes)
    entry = get_entry(args.name)
    if not args.yes and not sys.stdin.isatty():
        # an answer piped in (`echo n | ...`) was never typed at the prompt: do not act on it
        raise ChordError(f"not removing {entry.name}: stdin is not a terminal, so there is no one to ask; "
                         "pass --yes to remove it without asking")
    if not args.yes:
        inside = [p for p in entry.shards if is_inside_library(p)]
        what = "and delete its file" if inside else "(the file stays where it is)"
        answer = input(f"Remove {entry.name} {what}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("kept")
            return 1
    entry, deleted, kept = remove_model(entry.name)
    print(f"removed {entry.name}")
    for p in deleted:
        print(f"  deleted {p}")
    for p in kept:
        print(f"  kept {p} (outside the library directory)" if Path(p).exists() else f"  {p} was already gone")
    return 0


def _default(args) -> int:
    from ..library import default_model_name, set_default

    if args.name is None:
        name = default_model_name()
        print(name if name else "no models yet")
        return 0 if name else 1
    entry = set_default(args.name)
    print(f"default model: {entry.name}")
    return 0
