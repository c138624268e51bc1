"""A chat session: messages in, a stream of events out, with KV reuse.

``ChatSession.stream`` is a plain generator (toolong's pattern): the caller
— the CLI loop or a Textual thread worker — iterates it and passes a
``threading.Event`` to cancel. The session keeps one KV cache; every turn
prefills only the tokens after the longest common prefix of the new prompt
and what the cache already holds, so regenerate and edit cost just the
changed tail.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Iterator

from .chat_template import ChatTemplate, TemplateLimitError, fallback_name_for
from .drafters import Speculation
from .errors import ChordError
from .events import Done, ErrorEvent, Event, Notice
from .generator import Generator, GenerationResult, StepBatcher
from .model import Model
from .reply import Reply
from .sampling import SamplerSettings, SettingsSource, as_settings_source

_CONTINUE_MARK = "\ue000chord-continue\ue001"  # private-use characters no reply contains


class ChatSession:
    def __init__(self, model: Model, template: ChatTemplate | str | os.PathLike | None = None,
                 n_ctx: int | None = None, template_override: str | None = None, model_name: str | None = None,
                 batcher: StepBatcher | None = None, speculation: Speculation | None = None):
        """``template``: a ChatTemplate, or a fallback template's name
        (``chatml``, ...) or a .jinja file instead of the model's own (as
        ``batch``'s ``template=``; ``template_override`` is the older name).
        ``batcher``: what runs the one-token steps (default: the model's own
        eval; a DecodeBatcher runs several sessions' steps as one forward).
        ``speculation``: how replies guess ahead (default off; see drafters.py)."""
        if isinstance(template, (str, os.PathLike)):
            if template_override is not None:
                raise ChordError("give the chat template once: template or template_override, not both")
            template, template_override = None, os.fspath(template)
        self.model = model
        # what replies are recorded under: the library name when the caller knows it
        self.model_name = model_name or model.info.name
        self.template = template or ChatTemplate.for_model(model.metadata, template_override)
        try:
            self.template.check_limits()  # a template bomb fails the load, not the first message
        except TemplateLimitError as err:
            err.fallback = fallback_name_for(model.metadata)
            raise
        self.cache = model.new_cache(n_ctx)
        self.generator = Generator(model, self.cache, batcher=batcher, speculation=speculation)
        self._busy = threading.Lock()
        tok = model.tokenizer
        self.bos_token = tok.id_to_token[tok.bos_id] if tok.bos_id is not None else ""
        self.eos_token = tok.id_to_token[tok.eos_id] if tok.eos_id is not None else ""
        self._template_adds_bos = self.template.writes_bos(self.bos_token)
        # a chosen template's end-of-turn marker: the model may not have it as a token
        chosen = self.template.source.kind in ("fallback", "file")
        self.turn_stops: tuple[str, ...] = (self.template.end_of_turn,) if chosen and self.template.end_of_turn else ()

    @property
    def is_completion_only(self) -> bool:
        """A base model with no template chosen: messages are completed as plain text."""
        return self.template.source.kind == "none"

    @property
    def n_ctx(self) -> int:
        return self.cache.n_ctx

    # -- prompts ---------------------------------------------------------------
    def render(self, messages: list[dict], continue_reply: bool = False, add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages``; without ``add_generation_prompt``
        the conversation alone, as it stands, with no header opening a reply."""
        msgs = self.template.prepare(messages)
        kw = dict(bos_token=self.bos_token, eos_token=self.eos_token, n_ctx=self.n_ctx)
        if not continue_reply:
            return self.template.render(msgs, add_generation_prompt=add_generation_prompt, **kw)
        # continue the last (assistant) message: render it with a marker in
        # place of its text and cut there, dropping the template's end-of-turn
        # (HF's continue_final_message; searching for the text itself could
        # match inside the end-of-turn marker when the reply is short)
        partial = msgs[-1]["content"]
        marked = msgs[:-1] + [{**msgs[-1], "content": _CONTINUE_MARK}]
        full = self.template.render(marked, add_generation_prompt=False, **kw)
        at = full.find(_CONTINUE_MARK)
        if at >= 0:
            return full[:at] + partial
        return self.template.render(msgs[:-1], add_generation_prompt=True, **kw) + partial

    def prompt_ids(self, messages: list[dict], continue_reply: bool = False,
                   add_generation_prompt: bool = True) -> list[int]:
        text = self.render(messages, continue_reply, add_generation_prompt)
        return self.model.tokenize(text, add_special=not self._template_adds_bos, parse_special=True)

    def _fit(self, messages: list[dict], continue_reply: bool, reserve: int) -> tuple[list[dict], list[int], int]:
        """Drop the oldest exchanges until the prompt plus ``reserve`` tokens
        fits the context. Never dropped: the system prompt, and everything
        from the last user message on (the question being answered, and the
        reply being continued). Returns (messages, prompt ids, dropped count)."""
        msgs = list(messages)
        ids = self.prompt_ids(msgs, continue_reply)
        if len(ids) + reserve <= self.n_ctx:
            return msgs, ids, 0
        first = next((i for i, m in enumerate(msgs) if m.get("role") != "system"), len(msgs))
        keep_from = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=len(msgs) - 1)
        # exchanges start at user messages, so roles keep alternating after a cut
        cuts = [i for i in range(first + 1, keep_from + 1) if msgs[i].get("role") == "user"]

        def attempt(cut: int) -> tuple[list[dict], list[int]]:
            kept = msgs[:first] + msgs[cut:]
            return kept, self.prompt_ids(kept, continue_reply)

        # fewest exchanges dropped that fit, by bisection: each try renders and
        # tokenizes the whole conversation once, so a long chat costs log(n) tries
        lo, hi, best = 0, len(cuts) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            kept, kept_ids = attempt(cuts[mid])
            if len(kept_ids) + reserve <= self.n_ctx:
                best, hi = (cuts[mid], kept, kept_ids), mid - 1
            else:
                lo = mid + 1
        if best is None:
            raise ChordError(f"the message is too long for the context: {len(ids)} tokens, and {reserve} "
                             f"are kept free for the reply in a context of {self.n_ctx}")
        cut, kept, kept_ids = best
        return kept, kept_ids, cut - first

    def _refit(self, msgs: list[dict], continue_reply: bool, generated: str) -> list[int] | None:
        """Prompt ids for the conversation so far plus the reply being written,
        with old turns dropped so that half the context is free again."""
        if continue_reply:
            msgs = msgs[:-1] + [{"role": "assistant", "content": msgs[-1]["content"] + generated}]
        else:
            msgs = msgs + [{"role": "assistant", "content": generated}]
        try:
            _, ids, dropped = self._fit(msgs, True, reserve=self.n_ctx // 2)
        except ChordError:
            return None
        return ids if dropped else None

    # -- generation --------------------------------------------------------------
    def stream(self, messages: list[dict], settings: SettingsSource | SamplerSettings | None = None,
               cancel: threading.Event | None = None, continue_reply: bool = False) -> Iterator[Event]:
        """Reply to ``messages``; yields Started, TokenEvent…, Stats…, Notice…, then Done or ErrorEvent."""
        if not isinstance(messages, (list, tuple)) or not messages or not all(isinstance(m, dict) for m in messages):
            yield ErrorEvent(f"messages must be a non-empty list of {{role, content}} dicts, "
                             f"got {type(messages).__name__} {messages!r:.40}")
            return
        try:
            msgs, ids, dropped = self._fit(messages, continue_reply, reserve=min(256, self.n_ctx // 4))
        except ChordError as e:
            yield ErrorEvent(str(e))
            return
        if dropped:
            yield Notice(f"context full: the {dropped} oldest messages were left out of the prompt")
        yield from self.generate_ids(ids, settings, cancel,
                                     refit=lambda text: self._refit(msgs, continue_reply, text),
                                     extra_stops=self.turn_stops)

    def complete(self, prompt: str, settings: SettingsSource | SamplerSettings | None = None,
                 cancel: threading.Event | None = None) -> Iterator[Event]:
        """Plain completion of ``prompt`` (special-token text parsed, BOS as the model asks)."""
        if not isinstance(prompt, str) or not prompt:
            yield ErrorEvent("the prompt to complete is empty" if prompt == "" else
                             f"the prompt to complete must be text (a str), got {type(prompt).__name__}")
            return
        ids = self.model.tokenize(prompt, add_special=True, parse_special=True)
        if len(ids) >= self.n_ctx:
            yield ErrorEvent(f"the prompt is too long for the context: {len(ids)} tokens, context is {self.n_ctx}")
            return
        yield from self.generate_ids(ids, settings, cancel)

    def chat(self, messages: list[dict], settings: SettingsSource | SamplerSettings | None = None,
             continue_reply: bool = False) -> Reply:
        """Reply to ``messages``, as text pieces; ``stream`` gives the same as events."""
        cancel = threading.Event()
        return Reply(self.stream(messages, settings, cancel, continue_reply), cancel)

    def completion(self, prompt: str, settings: SettingsSource | SamplerSettings | None = None) -> Reply:
        """Continue ``prompt`` as plain text, as text pieces; ``complete`` gives the same as events."""
        cancel = threading.Event()
        return Reply(self.complete(prompt, settings, cancel), cancel)

    def generate_ids(self, prompt: list[int], settings: SettingsSource | SamplerSettings | None = None,
                     cancel: threading.Event | None = None,
                     refit: Callable[[str], list[int] | None] | None = None,
                     extra_stops: tuple[str, ...] = ()) -> Iterator[Event]:
        """Generate after ``prompt``; ``extra_stops`` end the reply like the settings' stop strings."""
        if not self._busy.acquire(blocking=False):
            yield ErrorEvent("this session is already generating a reply")
            return
        try:
            result = yield from self.generator.run(prompt, as_settings_source(settings), cancel or threading.Event(),
                                                   refit, extra_stops)
            yield result.stats
            yield Done(reason=result.reason, text=result.text, token_ids=result.token_ids, stats=result.stats,
                       record=self._record(result))
        except ChordError as e:
            yield ErrorEvent(str(e))
        except Exception as e:  # the engine must never take the conversation down with it
            yield ErrorEvent(f"engine error: {type(e).__name__}: {e}")
        finally:
            self._busy.release()

    @property
    def speculation(self) -> Speculation:
        return self.generator.speculation

    @speculation.setter
    def speculation(self, value: Speculation) -> None:
        """Takes effect at the reply's next check, even mid-reply."""
        self.generator.speculation = value

    def _record(self, result: GenerationResult) -> dict:
        """What a stored reply keeps: model identity, template, settings, seed, timings."""
        info, final = self.model.info, result.stats
        record = {
            "model": {"name": self.model_name, "general_name": info.general_name, "path": info.path,
                      "size": info.file_size, "fingerprint": info.fingerprint,
                      "architecture": info.architecture, "quant": info.quant},
            "template": str(self.template.source),
            "settings": result.settings.to_dict(),
            "settings_changes": result.settings_changes,  # [{"at_token": i, field: new value, ...}]
            "seed": result.seed,
            "timings": {"prompt_tokens": final.prompt_tokens, "reused_tokens": result.reused_tokens,
                        "prefill_tok_s": final.prefill_tok_s, "decode_tok_s": final.decode_tok_s,
                        "ttft_s": final.ttft_s, "generated": final.generated},
            "finish_reason": result.reason,
        }
        if result.speculation is not None:  # drafter, guesses made and kept, effective tok/s
            record["speculation"] = result.speculation
        return record
