"""``CoreEngine``: the Engine protocol (engine.py) backed by chord_core.

Called from the App's thread workers; holds the loaded Model and one
ChatSession whose KV cache serves every conversation by prefix reuse, or,
when the library name is a remote entry, a ``RemoteChat`` to its server
instead: ``load`` picks which, and each method that depends on the loaded
model asks the one it holds, so the UI never knows which it talks to.

One model at a time: a load swaps the new model in under ``_lock`` and
closes the old one, so its weights, file mapping and KV cache are given
back (an app switching models back and forth must not grow). A reply holds
the same lock while it streams, so a load waits for it to end; the App
cancels the reply first, and the session stops within one token.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

import psutil

from chord_core import library
from chord_core.events import ErrorEvent, Event
from chord_core.kv_cache import KVCache
from chord_core.library.files import is_inside_library
from chord_core.drafters import DEFAULT_LOOKUP, Speculation, check_draft_model
from chord_core.errors import ChordError
from chord_core.model import Model
from chord_core.remote_chat import RemoteChat
from chord_core.sampling import LiveSettings
from chord_core.session import ChatSession

from .engine import LoadedModelInfo, ModelEntry, Progress
from .remote_model import remote_info, remote_model_entry

REMOTE_PROMPT = "a remote model's server ({url}) renders the prompt with its own template: it cannot be shown here"
REMOTE_CANNOT_CONTINUE = ("continuing a reply needs a local model: an OpenAI-compatible server always starts a new "
                          "reply; regenerate it instead")

def _entry(e: library.LibraryEntry, default: str | None) -> ModelEntry:
    return ModelEntry(
        name=e.name, path=e.path, size_bytes=e.size, architecture=e.architecture, n_params=e.parameter_count,
        quant=e.quant_type, context_length=e.context_length or 0, template_source=e.chat_template_source,
        source=e.source, is_default=e.name == default, has_chat_template=e.has_chat_template,
        file_in_library=is_inside_library(e.path),
        metadata={"sha256": e.sha256, "added": e.added, "shards": len(e.shards), "last used": e.last_used or "-"},
    )


def kv_bytes_per_token(model: Model) -> int:
    """KV cache memory per position: every layer keeps a key and a value per KV head."""
    return KVCache.bytes_for(model.cfg, 1, model.kv_type)


def return_freed_memory() -> None:
    """Collect what a closed model left in reference cycles, then ask glibc to
    hand freed heap pages back to the system: weights freed from worker
    threads' arenas otherwise stay in the process (measured: SmolLM2 691 MB
    at first, 1174 MB after three round trips to Gemma; 717 MB with this)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to ask
            pass


def context_for(model: Model, n_ctx: int | None) -> int | None:
    """The context a session runs with: ``n_ctx`` up to the training context
    (None: the model's default)."""
    train = model.cfg.context_length
    return min(int(n_ctx), train) if n_ctx else None


def check_draft_fails(model: Model, draft: Model) -> bool:
    try:
        check_draft_model(model, draft)
    except ChordError:
        return True
    return False


class CoreEngine:
    def __init__(self, n_ctx: int | None = None, template_override: str | None = None,
                 load_options: dict | None = None, speculation: Speculation | None = None,
                 draft: str | None = None):
        """``speculation``: prompt lookup and guesses per check (its draft model is
        ignored); ``draft``: a draft model's name or path, loaded with the first model."""
        self.load_options = dict(load_options or {})  # Model.load's backend/threads/kv_type keywords
        spec = speculation or Speculation()
        self._lookup_n = spec.lookup or DEFAULT_LOOKUP  # the n-gram length when lookup is switched on
        self._lookup_on = bool(spec.lookup)
        self._draft_max = spec.draft_max
        self._draft_name = draft
        self._draft_model: Model | None = None
        self.n_ctx = n_ctx  # the context asked for when load() is given none (None: the model's default)
        self.template_override = template_override
        self._model: Model | None = None
        self._session: ChatSession | None = None
        self._remote: RemoteChat | None = None  # loaded instead of _model/_session for a remote entry
        self._info: LoadedModelInfo | None = None
        self._template: str | None = None  # the loaded model's template override, kept across context changes
        self._lock = threading.Lock()  # load vs generate: held while a reply streams and while models swap

    # -- library ---------------------------------------------------------------
    def list_models(self) -> list[ModelEntry]:
        library.discover()
        default = library.default_model_name()
        entries = [_entry(e, default) for e in library.list_entries()]
        entries += [remote_model_entry(e) for e in library.list_remotes()]
        return sorted(entries, key=lambda e: e.name.lower())

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
        if library.get_remote(name) is not None:
            library.remove_remote(name)  # an entry only: there is no file
            return
        library.remove_model(name)

    # -- the loaded model ----------------------------------------------------------
    def load(self, name_or_path: str, progress: Progress | None = None,
             n_ctx: int | None = None, template: str | None = None) -> LoadedModelInfo:
        remote = None if Path(name_or_path).expanduser().is_file() else library.get_remote(name_or_path)
        if remote is not None:
            return self._load_remote(remote, progress)
        path = library.resolve_model(name_or_path)
        if progress:
            progress(0.0, f"loading {Path(path).name}")
        model = Model.load(path, progress=(lambda f: progress(f, "reading weights")) if progress else None,
                           **self.load_options)
        try:
            name = next((e.name for e in library.list_entries() if Path(e.path) == Path(path)), model.info.name)
            template = template or self.template_override
            session = self._new_session(model, self.n_ctx if n_ctx is None else n_ctx, name, template)
        except BaseException:
            model.close()
            raise
        with self._lock:  # a reply still streaming ends first (the App has cancelled it)
            old, old_remote = self._model, self._remote
            self._model, self._session, self._template, self._remote = model, session, template, None
            self._info = self._describe(name, str(path), model, session)
        _release(old, old_remote)
        try:
            library.mark_used(name)
        except Exception:  # a model opened by path need not be in the library
            pass
        self._keep_draft_if_it_fits()
        if progress:
            progress(1.0, "ready")
        return self._info

    def _load_remote(self, entry: library.RemoteEntry, progress: Progress | None) -> LoadedModelInfo:
        """Connect (the server answers, takes the key, names its model), then swap it in for
        whatever was loaded; a local model's memory is given back as for any other swap."""
        if progress:
            progress(-1, f"connecting to {entry.url}")
        chat = RemoteChat(entry)
        try:
            chat.connect()
        except BaseException:
            chat.close()
            raise
        with self._lock:
            old, old_remote = self._model, self._remote
            self._model = self._session = self._template = None
            self._remote, self._info = chat, remote_info(chat)
        _release(old, old_remote)
        library.mark_used(entry.name)
        if progress:
            progress(1.0, "ready")
        return self._info

    def _refuse_remote(self, what: str) -> None:
        """``what`` (with ``{url}``) is the server's to decide for a remote model: say so in one line."""
        if self._remote is not None:
            raise ChordError(what.format(url=self._remote.entry.url))

    def set_context(self, n_ctx: int | None) -> LoadedModelInfo:
        self._refuse_remote("the context size of a remote model is set by its server ({url})")
        self.n_ctx = n_ctx
        with self._lock:
            if self._model is None or self._info is None:
                raise RuntimeError("no model loaded")
            # the old KV cache goes with the old session
            self._session = self._new_session(self._model, n_ctx, self._info.name, self._template)
            self._info = self._describe(self._info.name, self._info.path, self._model, self._session)
        return_freed_memory()
        return self._info

    def _new_session(self, model: Model, n_ctx: int | None, name: str, template: str | None) -> ChatSession:
        # replies are recorded under the library name (general.name is in the record beside it)
        return ChatSession(model, n_ctx=context_for(model, n_ctx), template_override=template, model_name=name,
                           speculation=self._speculation())

    # -- speculative decoding ------------------------------------------------------
    def _speculation(self) -> Speculation:
        return Speculation(lookup=self._lookup_n if self._lookup_on else 0, draft_max=self._draft_max,
                           draft_model=self._draft_model)

    @property
    def speculation(self) -> tuple[bool, str | None]:
        """Prompt lookup on, and the draft model's name (None: none)."""
        return self._lookup_on, self._draft_name

    def set_speculation(self, lookup: bool, draft: str | None) -> str | None:
        """Guess ahead with prompt lookup and/or a draft model (a library name or
        path; None: none), from the reply's next check on. A draft whose
        vocabulary differs is refused (ChordError); a warning is returned when
        it is no smaller than the loaded model."""
        warning = None
        model = None
        if draft is not None and draft != self._draft_name:
            model = Model.load(library.resolve_model(draft), **self.load_options)
            try:
                warning = check_draft_model(self._model, model) if self._model is not None else None
            except BaseException:
                model.close()
                raise
        # no lock: a reply in flight reads the session's speculation at its next check. A
        # replaced draft is not closed here (that reply may be drafting with it): dropping
        # the last reference frees it
        self._lookup_on = lookup
        if draft != self._draft_name:
            self._draft_model, self._draft_name = model, draft
        if self._session is not None:
            self._session.speculation = self._speculation()
        return warning

    def _keep_draft_if_it_fits(self) -> None:
        """After a load: load the draft asked for at start, or drop one whose vocabulary no longer fits."""
        if self._model is None or self._draft_name is None:
            return
        if self._draft_model is None:
            try:
                self._draft_model = Model.load(library.resolve_model(self._draft_name), **self.load_options)
            except Exception:
                self._draft_name = None
                return
        if check_draft_fails(self._model, self._draft_model):
            self._draft_model.close()
            self._draft_model = self._draft_name = None
        if self._session is not None:
            self._session.speculation = self._speculation()

    @staticmethod
    def _describe(name: str, path: str, model: Model, session: ChatSession) -> LoadedModelInfo:
        info = model.info
        return LoadedModelInfo(
            name=name, path=path, architecture=info.architecture, n_params=info.n_params, quant=info.quant,
            n_ctx=session.n_ctx, template_source=str(session.template.source), fingerprint=info.fingerprint,
            has_chat_template=info.has_chat_template, n_ctx_train=model.cfg.context_length,
            kv_bytes_per_token=kv_bytes_per_token(model))

    @property
    def info(self) -> LoadedModelInfo | None:
        return self._info

    @property
    def backend(self) -> str:
        if self._remote is not None:
            return "remote"
        return getattr(self._model, "backend_name", "numpy") if self._model is not None else ""

    @property
    def threads(self) -> int:
        if self._remote is not None:
            return 0  # the server's threads are its own
        return getattr(self._model, "threads", 1) if self._model is not None else 0

    def _require(self) -> ChatSession:
        if self._session is None:
            raise RuntimeError("no model loaded")
        return self._session

    def render_prompt(self, messages: list[dict[str, str]],
                      add_generation_prompt: bool = True) -> tuple[str, list[int]]:
        self._refuse_remote(REMOTE_PROMPT)
        s = self._require()
        return (s.render(messages, add_generation_prompt=add_generation_prompt),
                s.prompt_ids(messages, add_generation_prompt=add_generation_prompt))

    def token_pieces(self, ids: list[int]) -> list[tuple[str, bool]]:
        self._refuse_remote(REMOTE_PROMPT)
        tok = self._require().model.tokenizer
        return [(tok.token_to_piece(i).decode("utf-8", errors="replace"), tok.is_control(i)) for i in ids]

    def stream_reply(self, messages: list[dict[str, str]], settings: LiveSettings,
                     cancel: threading.Event, continue_reply: bool = False) -> Iterator[Event]:
        with self._lock:  # the session and its model cannot be swapped out mid-reply
            if self._remote is None:
                yield from self._require().stream(messages, settings, cancel, continue_reply=continue_reply)
            elif continue_reply:
                yield ErrorEvent(REMOTE_CANNOT_CONTINUE)
            else:  # the settings are read once, for this request: a slider applies to the next one
                yield from self._remote.stream(messages, settings, cancel)

    def memory_mb(self) -> float:
        return psutil.Process().memory_info().rss / 1e6  # decimal MB, as every size is shown


def _release(model, remote) -> None:
    """Give back what a swap replaced: a remote's connection, a local model's weights."""
    if remote is not None:
        remote.close()
    if model is not None:
        model.close()
        del model
        return_freed_memory()
