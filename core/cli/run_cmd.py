"""`chord-chat run MODEL [PROMPT] ...`: one chat turn (or a raw completion), streamed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import ChordError
from ..sampling import DEFAULT_MAX_TOKENS
from .common import add_engine_args, add_model_arg, load_model
from .speculation_option import add_speculation_args, check_speculation_args, speculation_for
from .context_option import check_ctx, warn_above_training_context

ROLES = ("system", "user", "assistant")


def register(sub) -> None:
    p = sub.add_parser("run", help="one chat turn through the model's template, streamed to stdout")
    add_model_arg(p)
    add_engine_args(p)
    add_speculation_args(p)
    p.add_argument("prompt", nargs="?", help="the user message (read from stdin when absent)")
    p.add_argument("--messages", type=Path, help="JSON list of {role, content}: the conversation so far")
    p.add_argument("--system", help="system prompt")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--min-p", type=float)
    p.add_argument("--repeat-penalty", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("-n", "--max-tokens", type=int, default=None,
                   help=f"at most this many tokens (default {DEFAULT_MAX_TOKENS}; -1: until the model ends its "
                        "turn or the context is full)")
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument("--ctx", type=int, default=None, help="context size (default: min(model, 4096))")
    p.add_argument("--template", help="fallback template name or a .jinja file, instead of the GGUF's "
                                      "(a base model has none: without this its prompt is completed as text)")
    p.add_argument("--raw", action="store_true", help="plain completion of PROMPT, no chat template")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end instead of streaming")
    p.add_argument("--verbose", action="store_true", help="print the rendered prompt and timings to stderr")
    p.set_defaults(func=run)


def _messages(args) -> list[dict]:
    msgs: list[dict] = []
    if args.messages:
        try:
            data = json.loads(args.messages.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ChordError(f"{args.messages}: cannot read messages JSON ({e})") from None
        if not isinstance(data, list) or not all(isinstance(m, dict) and "role" in m and "content" in m for m in data):
            raise ChordError(f"{args.messages}: expected a JSON list of {{\"role\", \"content\"}} objects")
        for i, m in enumerate(data):
            if m["role"] not in ROLES:
                raise ChordError(f"{args.messages}: message {i}: role {m['role']!r} is not one of {', '.join(ROLES)}")
            if not isinstance(m["content"], str):
                raise ChordError(f"{args.messages}: message {i}: content must be a string, "
                                 f"got {type(m['content']).__name__}")
        msgs = [{"role": m["role"], "content": m["content"]} for m in data]
    if args.system:
        msgs = [m for m in msgs if m["role"] != "system"]
        msgs.insert(0, {"role": "system", "content": args.system})
    if args.prompt is not None:
        msgs.append({"role": "user", "content": args.prompt})
    return msgs


def _conversation(args) -> list[dict]:
    if args.prompt is not None and not args.prompt.strip():  # an empty pipe, a blank argument: no question
        raise ChordError("nothing to answer: the prompt is empty (give PROMPT, text on stdin, or --messages)")
    msgs = _messages(args)
    if not msgs or msgs[-1]["role"] != "user":
        raise ChordError("nothing to answer: give a PROMPT, stdin, or --messages ending with a user message")
    return msgs


def _remote_entry(spec: str):
    """The remote library entry ``spec`` names (a file of that name wins), or None."""
    from ..library import get_remote

    return None if Path(spec).expanduser().is_file() else get_remote(spec)


def _max_tokens(args) -> int | None:
    if args.max_tokens is None:
        return DEFAULT_MAX_TOKENS
    return None if args.max_tokens == -1 else args.max_tokens


def _settings(args):
    from ..sampling import SamplerSettings

    changes = {k: v for k, v in {
        "temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k, "min_p": args.min_p,
        "repeat_penalty": args.repeat_penalty, "seed": args.seed,
    }.items() if v is not None}
    changes["max_tokens"] = _max_tokens(args)
    if args.stop:
        changes["stop"] = tuple(args.stop)
    return SamplerSettings(**changes)


def _base_model_warning(model) -> str:
    from ..chat_template import fallback_name_for
    from ..model_facts import BASE_MODEL_LABEL

    return (f"chord-chat: {model.info.name} is a {BASE_MODEL_LABEL} (it has no chat template), so the prompt "
            f"is completed as plain text; to chat, pick a template with --template NAME|FILE "
            f"(e.g. --template {fallback_name_for(model.metadata)})")


def _with_fallback_hint(err: ChordError, model) -> ChordError:
    """A template over its limits: say how to chat with a shipped one instead."""
    from ..chat_template import fallback_name_for

    fallback = getattr(err, "fallback", None) or fallback_name_for(model.metadata)
    return ChordError(f"{err}; to chat with a shipped template instead: --template {fallback}")


def run(args) -> int:
    from ..chat_template import TemplateLimitError
    from ..events import Done, ErrorEvent, Notice, TokenEvent
    from ..session import ChatSession

    if args.prompt is None and not args.messages:
        args.prompt = sys.stdin.read()
    check_ctx(args.ctx)
    if args.raw and not (args.prompt or "").strip("\n"):
        raise ChordError("--raw needs a non-empty PROMPT (or text on stdin)")
    settings = _settings(args)
    check_speculation_args(args)
    remote = _remote_entry(args.model)
    if remote is not None:
        from .run_remote import run_remote

        return run_remote(args, remote, _conversation(args), settings)
    model = load_model(args.model, args)
    speculation = speculation_for(args, model, load_model)
    warn_above_training_context(model, args.ctx)
    try:
        session = ChatSession(model, n_ctx=args.ctx, template_override=args.template, speculation=speculation)
    except TemplateLimitError as err:
        raise _with_fallback_hint(err, model) from None
    if args.raw:
        prompt_text = args.prompt or ""
        events = session.complete(prompt_text, settings)
    else:
        msgs = _conversation(args)
        if session.is_completion_only:
            print(_base_model_warning(model), file=sys.stderr)
        try:
            prompt_text = session.render(msgs)
        except TemplateLimitError as err:
            raise _with_fallback_hint(err, model) from None
        events = session.stream(msgs, settings)
    if args.verbose:
        print(f"template: {session.template.source}", file=sys.stderr)
        print(f"prompt:\n{prompt_text}", file=sys.stderr)
    done = None
    parts: list[str] = []
    ids: list[int] = []
    try:
        for ev in events:
            if isinstance(ev, TokenEvent):
                parts.append(ev.text)
                if ev.id >= 0:
                    ids.append(ev.id)
                if not args.json:
                    sys.stdout.write(ev.text)
                    sys.stdout.flush()
            elif isinstance(ev, Notice):
                print(f"\n[{ev.message}]", file=sys.stderr)
            elif isinstance(ev, ErrorEvent):
                raise ChordError(ev.message)
            elif isinstance(ev, Done):
                done = ev
    except KeyboardInterrupt:
        # Ctrl-C: what was generated is still printed (as JSON with --json), then exit 130
        if args.json:
            print(json.dumps({"text": "".join(parts), "token_ids": ids, "prompt": prompt_text,
                              "finish_reason": "interrupted"}, ensure_ascii=False))
        else:
            print()
        print("chord-chat: interrupted", file=sys.stderr)
        return 130
    assert done is not None
    s = done.stats
    if args.json:
        print(json.dumps({
            "text": done.text, "token_ids": list(done.token_ids), "prompt": prompt_text,
            "finish_reason": done.reason, "prompt_tokens": s.prompt_tokens,
            "completion_tokens": len(done.token_ids),  # as batch and serve name it
            "prefill_tok_s": round(s.prefill_tok_s, 2), "decode_tok_s": round(s.decode_tok_s, 2),
            "ttft_s": round(s.ttft_s, 4), "template": str(session.template.source), "seed": done.record["seed"],
            "speculation": done.record.get("speculation"),
        }, ensure_ascii=False))
    else:
        print()
    if done.reason == "length" and args.max_tokens is None and len(done.token_ids) >= DEFAULT_MAX_TOKENS:
        print(f"[reply cut at the default {DEFAULT_MAX_TOKENS} tokens: -n N for more, -n -1 for no limit]",
              file=sys.stderr)
    if args.verbose:
        print(f"load time      = {model.info.load_s * 1000:10.2f} ms", file=sys.stderr)
        print(f"prompt eval    = {s.prompt_tokens:6d} tokens ({s.prefill_tok_s:8.2f} tokens per second)", file=sys.stderr)
        print(f"eval           = {s.generated:6d} tokens ({s.decode_tok_s:8.2f} tokens per second)", file=sys.stderr)
        print(f"time to first  = {s.ttft_s * 1000:10.2f} ms; finish: {done.reason}", file=sys.stderr)
        if s.draft_proposed:
            print(f"speculation    = {s.draft_accepted} of {s.draft_proposed} guesses kept ({s.acceptance:.0%}; "
                  f"{session.speculation.describe()}, draft-max {session.speculation.draft_max})", file=sys.stderr)
    return 0
