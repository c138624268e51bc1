"""``CoreEngine``: the Engine protocol (engine.py) backed by chord_core.

Called from the App's thread workers; holds the loaded Model and one
ChatSession whose KV cache serves every conversation by prefix reuse.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterator

import psutil

from chord_core import library
from chord_core.events import Event
from chord_core.library.files import is_inside_library
from chord_core.model import Model
from chord_core.sampling import LiveSettings
from chord_core.session import ChatSession

from .engine import LoadedModelInfo, ModelEntry, Progress


def _entry(e: library.LibraryEntry, default: str | None) -> ModelEntry:
    return ModelEntry(
        name=e.name, path=e.path, size_bytes=e.size, architecture=e.architecture, n_params=e.parameter_count,
        quant=e.quant_type, context_length=e.context_length or 0, template_source=e.chat_template_source,
        source=e.source, is_default=e.name == default,
        file_in_library=is_inside_library(e.path),
        metadata={"sha256": e.sha256, "added": e.added, "shards": len(e.shards), "last used": e.last_used or "-"},
    )


class CoreEngine:
    def __init__(self, n_ctx: int | None = None, template_override: str | None = None):
        self.n_ctx = n_ctx
        self.template_override = template_override
        self._model: Model | None = None
        self._session: ChatSession | None = None
        self._info: LoadedModelInfo | None = None
        self._lock = threading.Lock()  # load vs generate

    # -- library ---------------------------------------------------------------
    def list_models(self) -> list[ModelEntry]:
        library.discover()
        default = library.default_model_name()
        return [_entry(e, default) for e in library.list_entries()]

    def default_model(self) -> str | None:
        return library.default_model_name()

    def set_default(self, name: str) -> None:
        library.set_default(name)

    def add_model(self, path: str, name: str | None = None) -> ModelEntry:
        return _entry(library.add_model(path, name=name), library.default_model_name())

    def pull_model(self, source: str, progress: Callable[[int, int | None], None],
                   cancel: threading.Event) -> ModelEntry:
        return _entry(library.pull(source, progress=progress, cancel=cancel), library.default_model_name())

    def remove_model(self, name: str) -> None:
        library.remove_model(name)

    # -- the loaded model ----------------------------------------------------------
    def load(self, name_or_path: str, progress: Progress | None = None) -> LoadedModelInfo:
        path = library.resolve_model(name_or_path)
        if progress:
            progress(0.0, f"loading {Path(path).name}")
        model = Model.load(path, progress=(lambda f: progress(f, "dequantizing weights")) if progress else None)
        session = ChatSession(model, n_ctx=self.n_ctx, template_override=self.template_override)
        with self._lock:
            self._model, self._session = model, session
            name = next((e.name for e in library.list_entries() if Path(e.path) == Path(path)), model.info.name)
            self._info = LoadedModelInfo(
                name=name, path=str(path), architecture=model.info.architecture, n_params=model.info.n_params,
                quant=model.info.quant, n_ctx=session.n_ctx, template_source=str(session.template.source),
                fingerprint=model.info.fingerprint)
        try:
            library.mark_used(name)
        except Exception:  # a model opened by path need not be in the library
            pass
        if progress:
            progress(1.0, "ready")
        return self._info

    @property
    def info(self) -> LoadedModelInfo | None:
        return self._info

    def _require(self) -> ChatSession:
        if self._session is None:
            raise RuntimeError("no model loaded")
        return self._session

    def render_prompt(self, messages: list[dict[str, str]]) -> tuple[str, list[int]]:
        s = self._require()
        return s.render(messages), s.prompt_ids(messages)

    def token_pieces(self, ids: list[int]) -> list[tuple[str, bool]]:
        tok = self._require().model.tokenizer
        return [(tok.token_to_piece(i).decode("utf-8", errors="replace"), tok.is_control(i)) for i in ids]

    def stream_reply(self, messages: list[dict[str, str]], settings: LiveSettings,
                     cancel: threading.Event, continue_reply: bool = False) -> Iterator[Event]:
        return self._require().stream(messages, settings, cancel, continue_reply=continue_reply)

    def memory_mb(self) -> float:
        return psutil.Process().memory_info().rss / 2**20
