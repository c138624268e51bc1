"""What the UI needs from an engine, as a Protocol.

The App takes an ``Engine`` in its constructor: ``CoreEngine``
(chord_tui/core_engine.py, backed by chord_core) in real use, a fake in
tests. Every method may be called from a worker thread; none touches the UI.
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
    metadata: dict[str, Any] = field(default_factory=dict)  # extra details for the details pane


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
    def load(self, name_or_path: str, progress: Progress | None = None) -> LoadedModelInfo: ...
    @property
    def info(self) -> LoadedModelInfo | None: ...
    def render_prompt(self, messages: list[dict[str, str]]) -> tuple[str, list[int]]:
        """The exact prompt text the model sees for ``messages`` (with the
        generation prompt) and its token ids."""
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
    def memory_mb(self) -> float: ...
