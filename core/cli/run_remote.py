"""``chord-chat run NAME`` where NAME is a remote model: the same turn, answered by its server.

The conversation and sampler options are built as for a local model
(run_cmd.py) and sent to the server, which applies its own chat template.
Options that only mean something to the local engine are refused in one
line rather than silently ignored.
"""

from __future__ import annotations

import json
import sys

from ..errors import ChordError
from ..library.remote import RemoteEntry
from ..sampling import DEFAULT_MAX_TOKENS


def local_only_options(args) -> list[str]:
    """The options given that a remote model cannot honour."""
    given = []
    for flag, value, default in (("--raw", args.raw, False), ("--template", args.template, None),
                                 ("--ctx", args.ctx, None), ("--draft", args.draft, None),
                                 ("--backend", args.backend, "auto"), ("--threads", args.threads, None),
                                 ("--kv-type", args.kv_type, "f32"), ("--gpu-layers", args.gpu_layers, None)):
        if value != default:
            given.append(flag)
    return given


def run_remote(args, entry: RemoteEntry, messages: list[dict], settings) -> int:
    from ..events import Done, ErrorEvent, TokenEvent
    from ..library import mark_used
    from ..remote_chat import RemoteChat

    refused = local_only_options(args)
    if refused:
        raise ChordError(f"{', '.join(refused)}: {entry.name} is a remote model ({entry.url}); its server "
                         "runs it with its own settings for that")
    chat = RemoteChat(entry).connect()
    try:
        if args.verbose:
            print(f"remote: {entry.url}, model {chat.model_id or '(the server default)'}", file=sys.stderr)
        done, parts = None, []
        try:
            for ev in chat.stream(messages, settings):
                if isinstance(ev, TokenEvent):
                    parts.append(ev.text)
                    if not args.json:
                        sys.stdout.write(ev.text)
                        sys.stdout.flush()
                elif isinstance(ev, ErrorEvent):
                    if parts and not args.json:
                        print()
                    raise ChordError(ev.message)
                elif isinstance(ev, Done):
                    done = ev
        except KeyboardInterrupt:  # what arrived is still printed, then exit 130 (the request is closed)
            if args.json:
                print(json.dumps({"text": "".join(parts), "finish_reason": "interrupted"}, ensure_ascii=False))
            else:
                print()
            print("chord-chat: interrupted", file=sys.stderr)
            return 130
    finally:
        chat.close()
    mark_used(entry.name)
    assert done is not None
    _report(args, entry, chat.model_id, done)
    return 0


def _report(args, entry: RemoteEntry, model_id: str | None, done) -> None:
    s = done.stats
    if args.json:
        print(json.dumps({
            "text": done.text, "finish_reason": done.reason, "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.generated, "decode_tok_s": round(s.decode_tok_s, 2), "ttft_s": round(s.ttft_s, 4),
            "seed": done.record["seed"], "model": entry.name, "remote": entry.url, "model_id": model_id,
        }, ensure_ascii=False))
    else:
        print()
    if done.reason == "length" and args.max_tokens is None and s.generated >= DEFAULT_MAX_TOKENS:
        print(f"[reply cut at the default {DEFAULT_MAX_TOKENS} tokens: -n N for more, -n -1 for no limit]",
              file=sys.stderr)
    if args.verbose:
        print(f"prompt         = {s.prompt_tokens:6d} tokens (as the server counts them)", file=sys.stderr)
        print(f"eval           = {s.generated:6d} tokens ({s.decode_tok_s:8.2f} tokens per second, "
              "measured from the stream)", file=sys.stderr)
        print(f"time to first  = {s.ttft_s * 1000:10.2f} ms; finish: {done.reason}", file=sys.stderr)
