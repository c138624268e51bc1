"""`chord-chat serve [MODEL]`: the engine behind an OpenAI-compatible HTTP API.

The server's packages (Starlette, uvicorn, sse-starlette) are the optional
``serve`` extra, imported only once the options are checked; without them
the verb says which extra to install, in one line.

Order of work: every option is checked and the model resolved (one-line
errors, nothing bound yet); the socket is bound (a port in use is one line
too); then uvicorn serves at once while the model loads on a thread, so
``/health`` answers 503 until it is ready, as llama-server's does.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import socket
import sys
import threading

from ..errors import ChordError
from .common import add_engine_args, engine_options, load_model
from .speculation_option import add_speculation_args, check_speculation_args, speculation_for
from .context_option import check_ctx, warn_above_training_context

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_PARALLEL = 4  # KV caches grow as they fill, so an idle slot costs little
MAX_PARALLEL = 64
API_KEY_ENV = "CHORD_API_KEY"
SERVE_MODULES = ("starlette", "uvicorn", "sse_starlette")
DEFAULT_QUEUE = 32  # chord_core.server.admission's; not imported from there: that needs the extra
READY_LINE = "chord-chat serve: ready"  # printed once the model answers; tests wait for it


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve a model over an OpenAI-compatible HTTP API")
    p.add_argument("model", nargs="?", help="library name or .gguf path (default: the default model)")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to bind (default {DEFAULT_HOST}; any other needs --api-key or --insecure)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    p.add_argument("--api-key", default=os.environ.get(API_KEY_ENV) or None,
                   help=f"require 'Authorization: Bearer KEY' on every request (default: ${API_KEY_ENV})")
    p.add_argument("--insecure", action="store_true",
                   help="allow binding a non-loopback address without an API key")
    p.add_argument("--ctx", type=int, default=None, help="context size of each slot (default: min(model, 4096))")
    p.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL,
                   help=f"requests generated at once, each in its own slot with its own KV cache "
                        f"(default {DEFAULT_PARALLEL})")
    p.add_argument("--queue", type=int, default=DEFAULT_QUEUE,
                   help=f"requests that may wait for a free slot (default {DEFAULT_QUEUE}); more get 429")
    p.add_argument("--template", help="fallback template name or a .jinja file, instead of the GGUF's")
    add_engine_args(p)
    add_speculation_args(p)  # one slot only: several slots batch their decode steps instead
    p.set_defaults(func=run)


def missing_serve_module() -> str | None:
    """The first of the ``serve`` extra's modules that does not import, or None."""
    for name in SERVE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def check_options(args) -> None:
    check_ctx(args.ctx)
    if not 1 <= args.parallel <= MAX_PARALLEL:
        raise ChordError(f"--parallel must be between 1 and {MAX_PARALLEL}, got {args.parallel}")
    if args.queue < 0:
        raise ChordError(f"--queue must be 0 or more, got {args.queue}")
    if not 0 <= args.port <= 65535:
        raise ChordError(f"--port must be between 0 and 65535, got {args.port}")
    if args.api_key is not None and not args.api_key.strip():
        raise ChordError("--api-key is empty")
    if not is_loopback(args.host) and not args.api_key and not args.insecure:
        raise ChordError(f"refusing to bind {args.host} without an API key: anyone who can reach it could run "
                         f"the model. Give --api-key KEY (or set {API_KEY_ENV}), bind 127.0.0.1, or pass "
                         "--insecure to serve without a key anyway")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as err:
        raise ChordError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(args) -> int:
    missing = missing_serve_module()
    if missing:
        raise ChordError(f"chord-chat serve needs the 'serve' extra (module {missing} is missing): "
                         "pip install \"chord-chat[serve]\"")
    options = engine_options(args)
    check_options(args)
    check_speculation_args(args)
    if args.draft and args.parallel > 1:
        print(f"chord-chat: warning: --draft is used with --parallel 1 only; with {args.parallel} slots their "
              "decode steps are batched instead", file=sys.stderr)
    from ..library import name_for_path, resolve_model

    path = resolve_model(args.model)
    model_id = name_for_path(path) or path.stem
    sock = bind(args.host, args.port)
    import uvicorn

    from ..server.app import ModelHost, create_app

    host = ModelHost(queue=args.queue)
    server = uvicorn.Server(uvicorn.Config(create_app(host, api_key=args.api_key), log_level="info",
                                           timeout_graceful_shutdown=5))
    failure: list[str] = []
    url = url_of(sock)
    print(f"chord-chat serve: listening on {url}, loading {model_id}…", file=sys.stderr, flush=True)

    def load() -> None:
        try:
            host.serve(_load(path, model_id, options, args))
            print(f"{READY_LINE}: {model_id} at {url}/v1 ({args.parallel} slot{'s' if args.parallel != 1 else ''} of "
                  f"{host.served.n_ctx} tokens){'' if args.api_key else ', no API key'}", file=sys.stderr, flush=True)
        except ChordError as err:
            failure.append(str(err))
            server.should_exit = True

    threading.Thread(target=load, name="chord-serve-load", daemon=True).start()
    server.run(sockets=[sock])
    if failure:
        raise ChordError(failure[0])
    return 0


def _load(path, model_id: str, options: dict, args):
    from ..model import Model
    from ..server.served_model import ServedModel
    from ..slots import SlotPool

    # the memory check counts every slot's cache full (None: one default context, the caches grow lazily)
    model = Model.load(path, **options, n_ctx=args.ctx * args.parallel if args.ctx else None)
    if model.backend_notice:
        print(f"chord-chat: {model.backend_notice}", file=sys.stderr)
    warn_above_training_context(model, args.ctx)
    speculation = speculation_for(args, model, load_model) if args.parallel == 1 else None
    pool = SlotPool(model, args.parallel, args.ctx, template_override=args.template, model_name=model_id,
                    speculation=speculation)
    if pool.sessions[0].is_completion_only:
        print(base_model_warning(model_id), file=sys.stderr)
    return ServedModel(pool, model_id)


def base_model_warning(model_id: str) -> str:
    from ..model_facts import BASE_MODEL_LABEL

    return (f"chord-chat: warning: {model_id} is a {BASE_MODEL_LABEL} (it has no chat template): "
            "/v1/chat/completions joins the messages into plain text and completes it; use /v1/completions, "
            "or serve it with --template NAME|FILE to chat")
