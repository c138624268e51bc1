"""A chat session: messages in, a stream of events out, with KV reuse.

``ChatSession.stream`` is a plain generator (toolong's pattern): the caller
— the CLI loop or a Textual thread worker — iterates it and passes a
``threading.Event`` to cancel. The session keeps one KV cache; every turn
prefills only the tokens after the longest common prefix of the new prompt
and what the cache already holds, so regenerate and edit cost just the
changed tail.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

import numpy as np

from .chat_template import ChatTemplate, TemplateLimitError, fallback_name_for
from .errors import ChordError
from .events import Done, ErrorEvent, Event, Notice, Started, Stats, TokenAlternative, TokenEvent
from .model import Model
from .sampling import Sampler, SamplerSettings, SettingsSource, as_settings_source
from .stop_strings import StopStringFilter
from .tokenizer import StreamDecoder

STATS_EVERY = 4  # tokens between Stats events while decoding
CANCEL_CHUNK = 128  # prompt tokens evaluated between two looks at the cancel event
_CONTINUE_MARK = "\ue000chord-continue\ue001"  # private-use characters no reply contains


def common_prefix_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class ChatSession:
    def __init__(self, model: Model, template: ChatTemplate | None = None, n_ctx: int | None = None,
                 template_override: str | None = None, model_name: str | None = None):
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
        ids = self.model.tokenize(prompt, add_special=True, parse_special=True)
        if len(ids) >= self.n_ctx:
            yield ErrorEvent(f"the prompt is too long for the context: {len(ids)} tokens, context is {self.n_ctx}")
            return
        yield from self.generate_ids(ids, settings, cancel)

    def generate_ids(self, prompt: list[int], settings: SettingsSource | SamplerSettings | None = None,
                     cancel: threading.Event | None = None,
                     refit: Callable[[str], list[int] | None] | None = None,
                     extra_stops: tuple[str, ...] = ()) -> Iterator[Event]:
        """Generate after ``prompt``; ``extra_stops`` end the reply like the settings' stop strings."""
        if not self._busy.acquire(blocking=False):
            yield ErrorEvent("this session is already generating a reply")
            return
        try:
            yield from self._generate(prompt, as_settings_source(settings), cancel or threading.Event(), refit,
                                      extra_stops)
        except ChordError as e:
            yield ErrorEvent(str(e))
        except Exception as e:  # the engine must never take the conversation down with it
            yield ErrorEvent(f"engine error: {type(e).__name__}: {e}")
        finally:
            self._busy.release()

    def _prefill(self, ids: list[int], cancel: threading.Event | None = None):
        """Evaluate what the cache lacks of ``ids``; (logits of the last token, tokens
        reused), or (None, reused) if ``cancel`` was set between two chunks."""
        cache = self.cache
        reuse = common_prefix_len(cache.tokens, ids)
        if reuse == len(ids):
            reuse -= 1  # logits come from evaluating at least one token
        cache.truncate(reuse)
        rest = ids[reuse:]
        # in chunks, so that a stop lands within one chunk even in a long prompt
        while len(rest) > CANCEL_CHUNK:
            if cancel is not None and cancel.is_set():
                return None, reuse
            self.model.eval(rest[:CANCEL_CHUNK], cache)
            rest = rest[CANCEL_CHUNK:]
        if cancel is not None and cancel.is_set():
            return None, reuse
        return self.model.eval(rest, cache), reuse

    def _generate(self, prompt: list[int], source: SettingsSource, cancel: threading.Event,
                  refit, extra_stops: tuple[str, ...]) -> Iterator[Event]:
        model, tok = self.model, self.model.tokenizer
        first = source.snapshot()
        sampler = Sampler(source, seed=first.seed)
        t_start = time.perf_counter()
        logits, reused = self._prefill(prompt, cancel)  # None if stopped: the loop ends at once
        if logits is not None and not np.isfinite(logits).all():
            # damaged weights or metadata: say so rather than fail inside the sampler
            raise ChordError(f"{model.info.name}: the model computed non-finite logits (NaN or inf); "
                             "its weights or metadata are damaged")
        t_prefill = time.perf_counter() - t_start
        n_prefilled = len(self.cache.tokens) - reused
        yield Started(prompt_tokens=len(prompt), reused_tokens=reused, n_ctx=self.n_ctx)
        decoder = StreamDecoder(tok)
        stops = StopStringFilter(first.stop + extra_stops)
        generated: list[int] = []
        text_parts: list[str] = []
        reason = "stop"
        t_first: float | None = None
        n_steps = 0  # single-token decode steps run since the first token
        refit_s = 0.0  # time spent evaluating the prompt again after a context refit
        last_settings, setting_changes = first, []

        def stats() -> Stats:
            now = time.perf_counter()
            busy = now - t_first - refit_s if t_first is not None else 0.0
            return Stats(prompt_tokens=len(prompt),
                         prefill_tok_s=n_prefilled / t_prefill if t_prefill > 0 else 0.0,
                         decode_tok_s=n_steps / busy if n_steps and busy > 0 else 0.0,
                         ttft_s=(t_first or now) - t_start, generated=len(generated),
                         n_past=self.cache.n_past, n_ctx=self.n_ctx)

        def piece(i: int) -> str:
            return tok.token_to_piece(i).decode("utf-8", errors="replace")

        while True:
            if cancel.is_set():
                reason = "cancelled"
                break
            settings = source.snapshot()  # read before every token: slider moves apply here
            if settings != last_settings:  # kept in the record, so the reply stays reproducible
                old = last_settings.to_dict()
                setting_changes.append({"at_token": len(generated),
                                        **{k: v for k, v in settings.to_dict().items() if old[k] != v}})
                last_settings = settings
            if settings.max_tokens is not None and len(generated) >= settings.max_tokens:
                reason = "length"
                break
            stops.stops = tuple(s for s in settings.stop + extra_stops if s)
            st = sampler.sample(logits, self.cache.tokens)
            if t_first is None:
                t_first = time.perf_counter()
            if tok.is_eog(st.id):
                break
            generated.append(st.id)
            shown = stops.push(decoder.push(st.id))
            text_parts.append(shown)
            yield TokenEvent(id=st.id, piece=piece(st.id), text=shown, prob=st.prob,
                             alternatives=tuple(TokenAlternative(i, piece(i), p) for i, p in st.alternatives))
            if stops.hit is not None:
                reason = "stop_string"
                break
            if len(generated) % STATS_EVERY == 0:
                yield stats()
            if self.cache.n_past >= self.n_ctx:
                ids = refit("".join(text_parts) + stops.pending) if refit else None
                if ids is None:
                    yield Notice("context full: the reply was cut at the context size")
                    reason = "length"
                    break
                yield Notice("context full: the oldest messages were dropped and the prompt evaluated again")
                t_refit = time.perf_counter()
                logits, _ = self._prefill(ids, cancel)
                refit_s += time.perf_counter() - t_refit
                continue
            logits = model.eval([st.id], self.cache)
            n_steps += 1
        tail = stops.push(decoder.flush()) + stops.flush()
        if tail:
            text_parts.append(tail)
            yield TokenEvent(id=-1, piece="", text=tail, prob=1.0)
        final = stats()
        info = model.info
        record = {
            "model": {"name": self.model_name, "general_name": info.general_name, "path": info.path,
                      "size": info.file_size, "fingerprint": info.fingerprint,
                      "architecture": info.architecture, "quant": info.quant},
            "template": str(self.template.source),
            "settings": first.to_dict(),
            "settings_changes": setting_changes,  # [{"at_token": i, field: new value, ...}]
            "seed": sampler.seed,
            "timings": {"prompt_tokens": final.prompt_tokens, "reused_tokens": reused,
                        "prefill_tok_s": final.prefill_tok_s, "decode_tok_s": final.decode_tok_s,
                        "ttft_s": final.ttft_s, "generated": final.generated},
            "finish_reason": reason,
        }
        yield final
        yield Done(reason=reason, text="".join(text_parts), token_ids=tuple(generated), stats=final, record=record)
