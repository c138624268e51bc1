"""Turning a conversation into the prompt text a model was trained on.

The template is the GGUF's own ``tokenizer.chat_template`` when it has one,
or, chosen explicitly, a file the user names or one of the fallbacks shipped
in ``chord_core.templates``. A model without a template is a base model:
its "conversation" is the plain text of the messages, to be completed, as
llama.cpp does for base models (``ChatTemplate.plain``). It is rendered the way HF transformers'
``apply_chat_template`` does (trim_blocks, lstrip_blocks, loopcontrols,
``raise_exception``, ``strftime_now``, a non-escaping ``tojson``), because
that is what template authors test against. A template is untrusted input
taken from a downloaded file, so it runs in Jinja's immutable sandbox, and
anything it does wrong becomes a one-line ``ChatTemplateError``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2

from .errors import ChordError
from .model_facts import BASE_MODEL_LABEL, CHAT_TEMPLATE_KEY
from .template_sandbox import DEFAULT_SECONDS, BoundedSandbox, TemplateLimits, TemplateOverBudget, bounded_render

GGUF_TEMPLATE_KEY = CHAT_TEMPLATE_KEY
TEMPLATE_SUFFIX = ".jinja"
# Text the system-support probe looks for; unlikely in any template.
_SYSTEM_PROBE = "chord-system-probe-7f3a"
_REPLY_PROBE = "chord-reply-probe-4c1e"
_EOS_PROBE = "chord-eos-probe-9b2d"
# A base model's prompt: the messages' text, one blank line apart, nothing added.
# Real templates are a few KB (tool-calling ones up to ~30 KB); past this, compiling alone would be slow.
MAX_TEMPLATE_CHARS = 256 * 1024
_PLAIN_TEXT = "{% for m in messages %}{{ m['content'] }}{% if not loop.last %}{{ '\n\n' }}{% endif %}{% endfor %}"
# What a template file must turn into a prompt before it is accepted.
_TEST_CONVERSATION = [
    {"role": "user", "content": "chord-test-question"},
    {"role": "assistant", "content": "chord-test-answer"},
    {"role": "user", "content": "chord-test-follow-up"},
]


class ChatTemplateError(ChordError):
    """A chat template could not be found, compiled or rendered."""


class TemplateLimitError(ChatTemplateError):
    """A chat template went over its time, output or memory limit: a bomb, or a
    template too heavy to use; a fallback template is the way out."""

    fallback: str | None = None  # the shipped template to offer instead, once the model is known


class _TemplateRaised(jinja2.TemplateError):
    """What ``raise_exception`` throws inside a render, before we name the template."""


@dataclass(frozen=True)
class TemplateSource:
    kind: Literal["gguf", "fallback", "file", "none"]
    name: str = ""  # the fallback's name, e.g. "gemma"
    path: str = ""  # the file, for kind "file"

    def __str__(self) -> str:
        if self.kind == "gguf":
            return f"GGUF {GGUF_TEMPLATE_KEY}"
        if self.kind == "fallback":
            return f"fallback: {self.name}"
        if self.kind == "none":
            return f"none ({BASE_MODEL_LABEL})"
        return f"file: {self.path}"


def available_fallbacks() -> list[str]:
    """Names of the templates shipped with chord, sorted."""
    folder = resources.files("chord_core.templates")
    return sorted(
        entry.name[: -len(TEMPLATE_SUFFIX)]
        for entry in folder.iterdir()
        if entry.name.endswith(TEMPLATE_SUFFIX)
    )


def _read_fallback(name: str) -> str:
    return resources.files("chord_core.templates").joinpath(name + TEMPLATE_SUFFIX).read_text("utf-8")


def fallback_name_for(metadata: dict) -> str:
    """The fallback family for a GGUF without a chat template, from its architecture and name."""
    arch = str(metadata.get("general.architecture", "")).lower()
    names = " ".join(
        str(metadata.get(key, "")) for key in ("general.name", "general.basename")
    ).lower()
    label = f"{arch} {names}"
    if arch.startswith("gemma") or "gemma" in names:
        return "gemma"
    if arch == "llama" and re.search(r"llama[-_ ]?v?3", names):
        return "llama3"
    # zephyr before mistral: Zephyr fine-tunes are often named after their Mistral base
    if "zephyr" in label:
        return "zephyr"
    if "mistral" in label or "mixtral" in label:
        return "mistral"
    if re.search(r"phi[-_ ]?3", label):
        return "phi3"
    if re.search(r"llama[-_ ]?v?2(?!\d)", label):
        return "llama2"
    return "chatml"


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    # Jinja's own tojson HTML-escapes <, > and &, which would corrupt tool
    # schemas and special tokens in a prompt; HF replaces it the same way.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def _raise_exception(message: Any) -> None:
    raise _TemplateRaised(str(message))


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _new_environment() -> BoundedSandbox:
    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.add_filter("tojson", _tojson)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def fold_system_messages(messages: list[dict]) -> list[dict]:
    """Move system text into the next user turn: system + blank line + user text.

    That is how Gemma 3's template and mistral-common place a system prompt
    for models trained without a system role. A system message with no user
    turn after it becomes a user message of its own.
    """
    folded: list[dict] = []
    pending: list[str] = []
    for message in messages:
        if message.get("role") == "system":
            pending.append(str(message.get("content", "")))
            continue
        if pending and message.get("role") == "user":
            message = {**message, "content": "\n\n".join(pending) + "\n\n" + str(message.get("content", ""))}
            pending = []
        folded.append(dict(message))
    if pending:
        folded.append({"role": "user", "content": "\n\n".join(pending)})
    return folded


class ChatTemplate:
    """A compiled chat template and where it came from."""

    def __init__(self, text: str, source: TemplateSource, time_budget_s: float = DEFAULT_SECONDS):
        self.text = text
        self.source = source
        self.time_budget_s = time_budget_s  # each render's
        if len(text) > MAX_TEMPLATE_CHARS:
            raise TemplateLimitError(f"chat template ({source}) is {len(text):,} characters long, over the "
                                     f"{MAX_TEMPLATE_CHARS:,}-character limit for a template")
        try:
            self._compiled = _new_environment().compile_bounded(text)
        except jinja2.TemplateSyntaxError as err:
            raise ChatTemplateError(
                f"chat template ({source}) has a syntax error at line {err.lineno}: {err.message}"
            ) from None
        except Exception as err:  # untrusted text: e.g. nesting deep enough to exhaust the parser's recursion
            raise ChatTemplateError(f"chat template ({source}) cannot be compiled: {type(err).__name__}: {err}") from None

    def __repr__(self) -> str:
        return f"ChatTemplate({self.source})"

    # --- where templates come from -------------------------------------

    @classmethod
    def fallback(cls, name: str) -> ChatTemplate:
        names = available_fallbacks()
        if name not in names:
            raise ChatTemplateError(
                f"unknown chat template {name!r}; available: {', '.join(names)} (or a path to a .jinja file)"
            )
        return cls(_read_fallback(name), TemplateSource("fallback", name=name))

    @classmethod
    def plain(cls) -> ChatTemplate:
        """For a base model: the messages as plain text, completed as they stand."""
        return cls(_PLAIN_TEXT, TemplateSource("none"))

    @classmethod
    def from_file(cls, path: str | Path) -> ChatTemplate:
        path = Path(path).expanduser()
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            raise ChatTemplateError(f"chat template file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ChatTemplateError(f"cannot read chat template file {path}: {err}") from None
        template = cls(text, TemplateSource("file", path=str(path)))
        template.check_renders_a_conversation()
        return template

    @classmethod
    def for_model(cls, metadata: dict, override: str | None = None) -> ChatTemplate:
        """The template to use for a model: the override, else the GGUF's, else
        none (``plain``): a fallback only when one is chosen."""
        if override:
            if override in available_fallbacks():
                return cls.fallback(override)
            if override.endswith(TEMPLATE_SUFFIX) or "/" in override or Path(override).expanduser().is_file():
                return cls.from_file(override)
            return cls.fallback(override)  # raises, listing the names
        text = metadata.get(GGUF_TEMPLATE_KEY)
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if isinstance(text, str) and text.strip():
            return cls(text, TemplateSource("gguf"))
        return cls.plain()

    # --- rendering -------------------------------------------------------

    def render(self, messages: list[dict], add_generation_prompt: bool = True,
               bos_token: str = "", eos_token: str = "", *, n_ctx: int | None = None, **extra: Any) -> str:
        """The prompt text for ``messages`` exactly as the template writes it.

        Pass the model's BOS/EOS strings: templates that write ``bos_token``
        themselves expect the caller not to add another (see ``writes_bos``).
        The render is bounded (``TemplateLimits.for_prompt``: ``n_ctx`` and the
        messages' length set the output limit); over a bound, ``TemplateLimitError``.
        """
        context = {"tools": None, "documents": None, **extra}
        input_chars = sum(len(str(m.get("content", ""))) for m in messages)
        limits = TemplateLimits.for_prompt(n_ctx, input_chars, seconds=self.time_budget_s)
        try:
            return bounded_render(self._compiled, limits, dict(
                messages=[dict(m) for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=bos_token,
                eos_token=eos_token,
                **context,
            ))
        except TemplateOverBudget as err:
            raise TemplateLimitError(f"chat template ({self.source}) {err}") from None
        except RecursionError:
            raise TemplateLimitError(f"chat template ({self.source}) nests calls deeper than Python's "
                                     f"recursion limit") from None
        except MemoryError:
            raise TemplateLimitError(f"chat template ({self.source}) ran out of memory") from None
        except _TemplateRaised as err:
            raise ChatTemplateError(f"chat template ({self.source}) refused the conversation: {err}") from None
        except jinja2.exceptions.SecurityError as err:
            raise ChatTemplateError(f"chat template ({self.source}) tried something unsafe: {err}") from None
        except Exception as err:  # untrusted code: any failure is the template's, shown as one line
            raise ChatTemplateError(
                f"chat template ({self.source}) failed: {type(err).__name__}: {err}"
            ) from None

    def check_limits(self) -> None:
        """Raise ``TemplateLimitError`` if the template goes over its limits on a
        plain conversation: a bomb is caught when a model loads, before the first
        message. Any other failure is left for the conversation that causes it."""
        try:
            self.render([{"role": "system", "content": "chord-test-system"}, *_TEST_CONVERSATION],
                        bos_token="<s>", eos_token="</s>")
        except TemplateLimitError:
            raise
        except ChatTemplateError:
            pass

    def check_renders_a_conversation(self) -> None:
        """Refuse a template that fails on, or leaves out, a plain user/assistant/user
        conversation: a file that is no chat template, or a broken one."""
        rendered = self.render(_TEST_CONVERSATION, bos_token="<s>", eos_token="</s>")
        missing = [m["content"] for m in _TEST_CONVERSATION if m["content"] not in rendered]
        if missing:
            raise ChatTemplateError(f"chat template ({self.source}) is not a chat template: a test "
                                    f"conversation rendered without its message {missing[0]!r}")

    @cached_property
    def end_of_turn(self) -> str:
        """The text the template writes after an assistant turn, up to the line's end
        (``<|im_end|>`` for chatml), minus the model's EOS: a model that does not know
        a fallback's marker as a token writes it as text, so it must be a stop string.
        "" if there is none or it cannot be told."""
        marked = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _REPLY_PROBE}]
        try:
            rendered = self.render(marked, add_generation_prompt=False, bos_token="", eos_token=_EOS_PROBE)
        except TemplateLimitError:
            raise
        except ChatTemplateError:
            return ""
        at = rendered.find(_REPLY_PROBE)
        if at < 0:
            return ""
        after = rendered[at + len(_REPLY_PROBE):].split(_EOS_PROBE)[0].strip()
        return after.splitlines()[0].strip() if after else ""

    @cached_property
    def supports_system(self) -> bool:
        """Whether a system message reaches the prompt (some templates raise, some drop it)."""
        probe = [{"role": "system", "content": _SYSTEM_PROBE}, {"role": "user", "content": "Hi"}]
        try:
            return _SYSTEM_PROBE in self.render(probe, bos_token="<s>", eos_token="</s>")
        except TemplateLimitError:
            raise
        except ChatTemplateError:
            return False

    def prepare(self, messages: list[dict]) -> list[dict]:
        """``messages`` ready for ``render``: system text folded into the first user turn if need be."""
        if not any(m.get("role") == "system" for m in messages) or self.supports_system:
            return [dict(m) for m in messages]
        return fold_system_messages(messages)

    def writes_bos(self, bos_token: str) -> bool:
        """Whether the rendered prompt already starts with ``bos_token``, so the tokenizer must not add it."""
        if not bos_token:
            return False
        try:
            rendered = self.render([{"role": "user", "content": "Hi"}], bos_token=bos_token, eos_token="")
        except TemplateLimitError:
            raise
        except ChatTemplateError:
            return False
        return rendered.startswith(bos_token)
