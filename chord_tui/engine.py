"""What the UI needs from an engine, as a Protocol.

The App takes an ``Engine`` in its constructor: ``CoreEngine``
(chord_tui/core_engine.py, backed by chord_core) in real use, a fake in
tests. Every method is called from a worker thread, never the UI thread
(tests/fake_engine.py checks it); none touches the UI. The properties
(``info``, ``backend``, ``threads``) only read what a load left behind and
may be read anywhere.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

from chord_core.events import Event
from chord_core.sampling import LiveSettings

Progress = Callable[[float, str], None]  # fraction 0..1 (or -1 unknown), label


@dataclass(frozen=True)
class ModelEntry:
    """One model of the library, as the models screen lists it."""

    name: str
    path: str
    size_bytes: int
    architecture: str
    n_params: int
    quant: str
    context_length: int
    template_source: str  # "gguf" | "fallback"
    source: str  # where it came from: URL, file, package
    is_default: bool = False
    file_in_library: bool = True  # its file is in the library's folder: removing the model deletes it
    has_chat_template: bool = True  # False: a base model, for completion only
    metadata: dict[str, Any] = field(default_factory=dict)  # extra details for the details pane
    remote: bool = False  # served by an OpenAI-compatible server (``path`` is its URL), no file here


@dataclass(frozen=True)
class LoadedModelInfo:
    name: str
    path: str
    architecture: str
    n_params: int
    quant: str
    n_ctx: int  # the context the session runs with
    template_source: str  # shown to the user, e.g. "GGUF tokenizer.chat_template" / "fallback: gemma"
    fingerprint: str  # sha256 or a cheap fingerprint of the file
    has_chat_template: bool = True  # False: a base model, for completion only
    n_ctx_train: int = 0  # the context the model was trained with: the most n_ctx may be
    kv_bytes_per_token: int = 0  # KV cache memory per position of context


def kv_cache_bytes(info: LoadedModelInfo, n_ctx: int | None = None) -> int:
    """The memory the KV cache takes when it holds ``n_ctx`` positions (default: the session's)."""
    return info.kv_bytes_per_token * (info.n_ctx if n_ctx is None else n_ctx)


class Engine(Protocol):
    # -- library --------------------------------------------------------
    def list_models(self) -> list[ModelEntry]: ...
    def default_model(self) -> str | None: ...
    def set_default(self, name: str) -> None: ...
    def add_model(self, path: str, name: str | None = None) -> ModelEntry: ...
    def pull_model(self, source: str, progress: Callable[[int, int | None], None],
                   cancel: threading.Event) -> ModelEntry: ...
    def remove_model(self, name: str) -> None: ...

    # -- the loaded model -------------------------------------------------
    def load(self, name_or_path: str, progress: Progress | None = None,
             n_ctx: int | None = None, template: str | None = None) -> LoadedModelInfo:
        """Load a model with a context of ``n_ctx`` (None: the model's default;
        at most its training context) and chat ``template`` (a shipped
        template's name or a file; None: the model's own). The previous model
        is released. Waits for a reply in flight to end (load vs generate). A
        template over its limits raises chord_core's ``TemplateLimitError``
        with the shipped template to offer in its ``fallback``."""
        ...
    def set_context(self, n_ctx: int | None) -> LoadedModelInfo:
        """Run the loaded model with a new context size (a fresh KV cache)."""
        ...
    @property
    def info(self) -> LoadedModelInfo | None: ...
    @property
    def backend(self) -> str:
        """What computes the forward pass, e.g. "cpu" or "numpy"."""
        ...
    @property
    def threads(self) -> int: ...
    def render_prompt(self, messages: list[dict[str, str]],
                      add_generation_prompt: bool = True) -> tuple[str, list[int]]:
        """The exact prompt text the model sees for ``messages`` and its token
        ids; with ``add_generation_prompt`` the header that opens the reply."""
        ...
    def token_pieces(self, ids: list[int]) -> list[tuple[str, bool]]:
        """(text, is_special) per id, for highlighting special tokens."""
        ...
    def stream_reply(self, messages: list[dict[str, str]], settings: LiveSettings,
                     cancel: threading.Event, continue_reply: bool = False) -> Iterator[Event]:
        """Generate the assistant's reply to ``messages`` (the whole
        conversation, system prompt first if any). With ``continue_reply`` the
        last message is an assistant message to be continued. Yields
        chord_core.events; the last one is Done or ErrorEvent. Reads
        ``settings.snapshot()`` before every token. Stops within one token
        once ``cancel`` is set."""
        ...
    @property
    def speculation(self) -> tuple[bool, str | None]:
        """Speculative decoding as it stands: prompt lookup on, the draft model's name (None: none)."""
        ...
    def set_speculation(self, lookup: bool, draft: str | None) -> str | None:
        """Prompt lookup on or off and a draft model (a library name; None: none)
        for the replies from their next check on. Raises ChordError for a draft
        whose vocabulary differs from the loaded model's; returns a warning (or
        None), e.g. for a draft no smaller than the model."""
        ...
    def memory_mb(self) -> float: ...
