"""``chord-chat web``: the chat TUI in a browser, through textual-serve.

textual-serve runs a shell command for every browser session and relays
that process's terminal over a websocket to xterm.js in the page. The
command is this app's own entry point (``python -m chord_tui chat``, on the
interpreter running the server) with the options ``web`` was given, so a
browser session is exactly the terminal app: its library, conversations and
config under the same CHORD_HOME, each session a process with its own model.
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Any

from chord_core.cli.serve_cmd import is_loopback
from chord_core.errors import ChordError

if TYPE_CHECKING:  # the CLI builds its parser on every start: no engine modules for a type
    from chord_core.drafters import Speculation

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
READY_LINE = "chord-chat web: serving on"  # printed once the socket listens; tests wait for it


def register(sub) -> None:
    from chord_core.cli.common import add_engine_args
    from chord_core.cli.speculation_option import add_speculation_args

    p = sub.add_parser("web", help="serve the chat UI in a browser (textual-serve)")
    p.add_argument("model", nargs="?", help="library name or .gguf path (default: the app's default model)")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to bind (default {DEFAULT_HOST}; anything else exposes the app, "
                        "which has no authentication)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default {DEFAULT_PORT})")
    p.add_argument("--public-url",
                   help="the URL browsers reach the server at, when it is not http://HOST:PORT "
                        "(behind a proxy, or bound to 0.0.0.0)")
    add_engine_args(p)
    add_speculation_args(p)
    p.set_defaults(func=run)


def app_command(model: str | None, engine_options: dict[str, Any], speculation: Speculation | None = None,
                draft: str | None = None, lookup_given: bool = True) -> str:
    """The shell command textual-serve runs per browser session: the chat UI
    on this interpreter with the same model, engine and speculation options
    (``speculation``/``draft`` as ``launch`` takes them; None: chat's defaults;
    ``lookup_given``: pass --lookup on, else each tab starts with the saved choice)."""
    argv = [sys.executable, "-m", "chord_tui", "chat"]
    if model:
        argv.append(model)
    argv += ["--backend", engine_options["backend"], "--kv-type", engine_options["kv_type"]]
    if engine_options.get("threads") is not None:
        argv += ["--threads", str(engine_options["threads"])]
    if engine_options.get("gpu_layers") is not None:
        argv += ["--gpu-layers", str(engine_options["gpu_layers"])]
    if speculation is not None:
        argv += ["--draft-max", str(speculation.draft_max)]
        if lookup_given:  # else the chat UI starts with the side panel's saved choice
            argv += ["--lookup", str(speculation.lookup)]
    if draft:
        argv += ["--draft", draft]
    return shlex.join(argv)


def exposure_warning(host: str) -> str | None:
    """What to say before binding ``host``; None for loopback."""
    if is_loopback(host):
        return None
    return (f"chord-chat web: WARNING: binding {host}: the web UI has no authentication. Anyone who can "
            "reach this port gets the full app: your conversations, your model library, and this "
            "machine's CPU. Bind 127.0.0.1 (the default) and use an SSH tunnel or an authenticating "
            "proxy to reach it from elsewhere.")


def run(args) -> int:
    from chord_core.cli.common import engine_options
    from chord_core.cli.speculation_option import check_speculation_args
    from chord_core.library import resolve_model

    options = engine_options(args)
    speculation = check_speculation_args(args)
    for spec in (args.model, args.draft):
        if spec:
            resolve_model(spec)  # a name or path that is no model: say so now, not in every browser tab
    if not 0 < args.port < 65536:
        raise ChordError(f"--port must be between 1 and 65535, got {args.port}")
    try:
        from chord_tui.web_server import ChordWebServer
    except ImportError as err:
        raise ChordError(f"chord-chat web needs the 'web' extra ({err.name} is missing): "
                         "pip install 'chord-chat[web]'") from None
    warning = exposure_warning(args.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    server = ChordWebServer(app_command(args.model, options, speculation, args.draft,
                                        lookup_given=args.lookup is not None), host=args.host, port=args.port,
                            public_url=args.public_url)
    server.serve()
    return 0
