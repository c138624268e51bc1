"""ChordApp: wires the engine, the store and the config to the screens.

The App owns what outlives a screen: the engine, the live sampler settings
(shared with the reply worker), the config, the downloads (downloads.py),
and loading a model, which runs ``engine.load`` in a thread worker and
reports through messages. No engine call runs on the UI thread: each one
is a worker's (a thread worker, or ``asyncio.to_thread`` inside one).
"""

from __future__ import annotations

import asyncio
import os
import time
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from chord_core.chat_template import TemplateLimitError
from chord_core.errors import ChordError
from chord_core.sampling import LiveSettings
from chord_tui.downloads import Downloads
from chord_tui.engine import Engine
from chord_tui.messages import (ContextSizeChosen, DefaultModelFound, ModelLoaded, ModelLoadFailed, ModelLoadProgress,
                                PullFailed, PullFinished, PullProgress, SettingChanged, SpeculationChanged)
from chord_tui.screens.chat import ChatScreen
from chord_tui.screens.dialogs import ConfirmDialog
from chord_tui.screens.help import HelpScreen, sections_from
from chord_tui.screens.models import ModelsScreen
from chord_tui.screens.prompt_view import PromptScreen, prompt_request
from chord_tui.widgets.chat_input import ChatInput
from chord_tui.widgets.conversation_list import ConversationListView
from chord_tui.widgets.conversation_view import ConversationView
from chord_tui.widgets.token_view import TokenView

MEMORY_POLL_S = 2.0
CONFIG_SAVE_DELAY_S = 1.0  # a slider drag makes many changes; write the file once


def default_export_dir() -> Path:
    home = os.environ.get("CHORD_HOME")
    if home:
        return Path(home).expanduser() / "exports"
    from platformdirs import user_documents_dir

    return Path(user_documents_dir()) / "chord-chat"


class ChordApp(App):
    CSS_PATH = ["styles/app.tcss", "styles/chat.tcss", "styles/models.tcss", "styles/dialogs.tcss"]
    TITLE = "chord-chat"
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("f4", "models", "Models"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, engine: Engine, store=None, config=None, model: str | None = None,
                 clock: Callable[[], float] = time.perf_counter, *, export_dir: Path | None = None,
                 cursor_blink: bool = True, stream_refresh_s: float = 0.1) -> None:
        super().__init__()
        if store is None:
            from chord_tui.storage import ConversationStore

            store = ConversationStore()
        if config is None:
            from chord_tui.config import AppConfig

            config = AppConfig.load()
        self.engine = engine
        self.store = store
        self.config = config
        self.clock = clock
        self.initial_model = model
        self.export_dir = export_dir or default_export_dir()
        self.cursor_blink = cursor_blink
        self.stream_refresh_s = stream_refresh_s  # redraw interval of a streaming reply (0: every batch)
        self.live_settings = LiveSettings(config.sampler)
        self.loading_model: str | None = None
        self.downloads = Downloads(self)
        if getattr(config, "theme", None) and config.theme in self.available_themes:
            self.theme = config.theme
        self._save_timer = None

    def get_default_screen(self) -> Screen:
        screen = ChatScreen(self.store, self.config.sampler, self.clock,
                            side_panel=self.config.side_panel_visible, cursor_blink=self.cursor_blink)
        screen.state.default_system_prompt = self.config.system_prompt
        screen.state.pending_system_prompt = self.config.system_prompt
        self._chat = screen
        return screen

    @property
    def chat(self) -> ChatScreen:
        return self._chat

    def chat_ready(self) -> None:
        """Called by the chat screen once its widgets exist (after App.on_mount)."""
        chat = self.chat
        chat.inspector = self.config.inspector
        chat.side_panel.set_system_prompt(self.config.system_prompt)
        if self.config.warning:
            self.notify(self.config.warning, severity="warning", timeout=10)
        if getattr(self.store, "notice", None):
            self.notify(self.store.notice, title="Conversations", severity="warning", timeout=15)
        self.update_memory()
        # The chat screen owns the timer, so it stops when the screen goes away.
        chat.set_interval(MEMORY_POLL_S, self.update_memory)
        name = self.initial_model or self.config.last_model
        if name:
            self.load_model(name)
        else:
            self.find_default_model()

    def find_default_model(self, exclude: str | None = None) -> None:
        """Load the library's default model, looked up in a worker: on a first
        start that lookup unpacks the demo model, which must not freeze the UI."""
        self.chat.status.set_state("looking for models…")
        self._find_default_worker(exclude)

    @work(thread=True, group="find-default", exclusive=True, exit_on_error=False)
    def _find_default_worker(self, exclude: str | None) -> None:
        try:
            self.post_message(DefaultModelFound(self.engine.default_model(), exclude=exclude))
        except Exception as err:  # a damaged library: say why, stay usable
            self.post_message(DefaultModelFound(None, error=str(err) or type(err).__name__, exclude=exclude))

    def on_default_model_found(self, message: DefaultModelFound) -> None:
        if message.error:
            self.notify(f"Model library: {message.error}", severity="error", timeout=10)
        if self.engine.info is not None or self.loading_model:
            return  # the user picked a model while the lookup ran: theirs wins
        if message.name and message.name != message.exclude:
            self.load_model(message.name)
            return
        if self.engine.info is None and not self.loading_model:
            self.chat.status.set_state("no model")
            if message.name is None and not message.error:
                self.notify("No model yet: press F4 to add or pull one.", timeout=8)

    def on_unmount(self) -> None:
        self.chat.stop_generation(closing=True)
        self.downloads.stop()
        self.save_config()

    # -- model loading -------------------------------------------------------------------
    def load_model(self, name: str, template: str | None = None) -> None:
        """Load ``name`` with its own chat template, or ``template`` (a shipped one's name)."""
        if self.loading_model:
            self.notify(f"Already loading {self.loading_model}.", severity="warning")
            return
        self.chat.stop_generation()
        self.loading_model = name
        self._show_load(f"loading {name}…", -1)
        self._load_worker(name, self.config.context_size, template)

    @work(thread=True, group="load", exit_on_error=False)
    def _load_worker(self, name: str, n_ctx: int | None, template: str | None = None) -> None:
        def progress(fraction: float, label: str) -> None:
            self.post_message(ModelLoadProgress(name, fraction, label))

        try:
            info = self.engine.load(name, progress=progress, n_ctx=n_ctx, template=template)
        except TemplateLimitError as err:  # a template bomb: the model itself may be fine
            self.post_message(ModelLoadFailed(name, str(err), fallback_template=err.fallback))
        except Exception as err:  # any failure: show why, stay usable
            self.post_message(ModelLoadFailed(name, str(err) or type(err).__name__))
        else:
            self.post_message(ModelLoaded(name, info))

    def _show_load(self, label: str, fraction: float, done: bool = False, failed: bool = False) -> None:
        chat = self.chat
        if not done:
            pct = f" {fraction:.0%}" if fraction >= 0 else ""
            chat.status.set_state(f"{label}{pct}")
            chat.side_panel.show_model(None, loading=label)
        if isinstance(self.screen, ModelsScreen):
            self.screen.show_load(label, fraction, done, failed)

    def on_model_load_progress(self, message: ModelLoadProgress) -> None:
        self._show_load(f"loading {message.name}: {message.label}", message.fraction)

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.loading_model = None
        info = message.info
        chat = self.chat
        chat.side_panel.show_model(info)
        chat.status.reset_reply()
        chat.status.set_model(info.name, info.n_ctx)
        chat.status.set_backend(self.engine.backend, self.engine.threads)
        chat.status.set_state("ready")
        if info.has_chat_template:  # the next start opens the last *chat* model, never a base model tried once
            self.config.last_model = message.name
            self.schedule_config_save()
        self.update_memory()
        self._show_draft_choices()
        self._show_load(f"loaded {info.name}", 1.0, done=True)
        self.notify(f"Loaded {info.name}", timeout=3)

    def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        self.loading_model = None
        chat = self.chat
        info = self.engine.info  # the engine may still have the previous model
        chat.side_panel.show_model(info)
        chat.status.set_state("ready" if info else "no model")
        self._show_load(f"failed: {message.reason}", 0.0, done=True, failed=True)
        self.notify(f"Could not load {message.name}: {message.reason}", title="Load failed",
                    severity="error", timeout=10)
        if message.fallback_template:
            self.offer_fallback_template(message.name, message.fallback_template, message.reason)
            return
        if info is None and message.name == self.config.last_model:
            # the remembered model is gone (deleted, moved): open the library's default instead
            self.config.last_model = None
            self.schedule_config_save()
            self.find_default_model(exclude=message.name)

    def offer_fallback_template(self, name: str, fallback: str, reason: str) -> None:
        """The model's own chat template is over its limits: offer to load it with a shipped one."""
        def chosen(use: bool | None) -> None:
            if use:
                self.load_model(name, template=fallback)

        self.push_screen(ConfirmDialog(f"{name}'s chat template cannot be used.",
                                       f"{reason}. Load {name} with the shipped '{fallback}' template instead?",
                                       confirm=f"Use {fallback}"), chosen)

    @work(group="memory", exclusive=True, exit_on_error=False)
    async def update_memory(self) -> None:
        try:
            mb = await asyncio.to_thread(self.engine.memory_mb)
        except Exception:  # memory is informative only
            mb = None
        if self.chat.is_attached:
            self.chat.status.set_memory(mb)

    # -- downloads (downloads.py): they outlive the models screen ---------------------------
    def on_pull_progress(self, message: PullProgress) -> None:
        self.downloads.progress(message)
        self._show_downloads()

    def on_pull_finished(self, message: PullFinished) -> None:
        self.downloads.finished(message)
        self.notify(f"Downloaded {message.entry.name}: it is in the library (F4).", title="Download finished")
        self._show_downloads(added=message.entry.name)

    def on_pull_failed(self, message: PullFailed) -> None:
        if self.downloads.failed(message):
            self.notify(f"Cancelled the download of {message.source}.", title="Download cancelled")
        else:
            self.notify(f"Could not pull {message.source}: {message.reason}", title="Pull failed",
                        severity="error", timeout=10)
        self._show_downloads()

    def download(self, source: str) -> None:
        """Pull ``source`` into the library now, or after the downloads before it."""
        self.notify(self.downloads.add(source))
        self._show_downloads()

    def action_cancel_download(self) -> None:
        note = self.downloads.cancel()
        self.notify(note or "No download is running.", severity="information" if note else "warning")
        self._show_downloads()

    def _show_downloads(self, added: str | None = None) -> None:
        self.chat.status.set_download(self.downloads.status())
        for screen in self.screen_stack:
            if isinstance(screen, ModelsScreen):
                screen.show_download()
                if added:
                    screen.refresh_models(added)

    # -- settings --------------------------------------------------------------------------
    def on_context_size_chosen(self, message: ContextSizeChosen) -> None:
        self.config.context_size = message.n_ctx
        self.schedule_config_save()
        if self.engine.info is not None and not self.loading_model:
            self._set_context(message.n_ctx)

    @work(group="context", exclusive=True, exit_on_error=False)
    async def _set_context(self, n_ctx: int | None) -> None:
        # a fresh KV cache; the engine waits for a reply in flight to end first
        try:
            info = await asyncio.to_thread(self.engine.set_context, n_ctx)
        except Exception as err:
            self.notify(f"Could not change the context: {err}", severity="error")
            return
        self.chat.status.set_model(info.name, info.n_ctx)
        self.chat.side_panel.show_model(info)

    def on_speculation_changed(self, message: SpeculationChanged) -> None:
        self._set_speculation(message.lookup, message.draft)

    @work(group="speculation", exclusive=True, exit_on_error=False)
    async def _set_speculation(self, lookup: bool, draft: str | None) -> None:
        # loading a draft model reads a file: a worker's job; a reply in flight uses it from its next check
        try:
            warning = await asyncio.to_thread(self.engine.set_speculation, lookup, draft)
        except Exception as err:  # another vocabulary, a missing file: say why, keep what was
            self.notify(f"Draft model {draft}: {err}", title="Speculative decoding", severity="error", timeout=10)
            self.chat.side_panel.show_speculation(*self.engine.speculation)
            return
        self.config.lookup, self.config.draft_model = lookup, draft  # the next start begins with them
        self.schedule_config_save()
        if warning:
            self.notify(warning, title="Speculative decoding", severity="warning", timeout=8)

    @work(group="draft-choices", exclusive=True, exit_on_error=False)
    async def _show_draft_choices(self) -> None:
        """The library's models as draft choices, and the engine's speculation, in the side panel."""
        try:
            models = await asyncio.to_thread(self.engine.list_models)
        except Exception:  # the library could not be read: the picker keeps what it had
            models = None
        # a draft runs here beside the model: a remote entry has no weights to draft with
        names = [m.name for m in models if not m.remote] if models is not None else None
        self.chat.side_panel.show_speculation(*self.engine.speculation, names)

    def on_setting_changed(self, message: SettingChanged) -> None:
        try:
            settings = self.live_settings.update(**{message.key: message.value})
        except (ChordError, TypeError, ValueError) as err:  # a bad value is refused, never fatal
            self.notify(f"{message.key}: {err}", severity="error")
            return
        self.config.sampler = settings
        self.schedule_config_save()

    def remember_side_panel(self, visible: bool) -> None:
        self.config.side_panel_visible = visible
        self.schedule_config_save()

    def schedule_config_save(self) -> None:
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_timer = self.set_timer(CONFIG_SAVE_DELAY_S, self.save_config)

    def save_config(self) -> None:
        self._save_timer = None
        self.config.inspector = self.chat.inspector
        self.config.theme = self.theme  # picked in the command palette: keep it for the next start
        try:
            self.config.save()
        except OSError as err:
            self.notify(f"Could not save settings: {err}", severity="error")

    # -- screens ----------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keymap()))

    def action_models(self) -> None:
        if not isinstance(self.screen, ModelsScreen):
            self.push_screen(ModelsScreen(cursor_blink=self.cursor_blink))

    def show_prompt(self, messages: list[dict[str, str]], has_draft: bool = False) -> None:
        if self.engine.info is None:
            self.notify("No model loaded: the prompt depends on its template.", severity="warning")
            return
        self._render_prompt(*prompt_request(messages, has_draft))

    @work(group="prompt", exclusive=True, exit_on_error=False)
    async def _render_prompt(self, messages: list[dict[str, str]], add_header: bool, note: str) -> None:
        try:
            text, ids = await asyncio.to_thread(self.engine.render_prompt, messages, add_header)
            pieces = await asyncio.to_thread(self.engine.token_pieces, ids)
        except Exception as err:
            self.notify(f"Could not render the prompt: {err}", severity="error")
            return
        self.push_screen(PromptScreen(text, pieces, len(ids), note))

    def keymap(self):
        groups = [
            ("Anywhere", list(self.BINDINGS) + [Binding("ctrl+p", "command_palette", "Command palette")]),
            ("Chat", list(ChatScreen.BINDINGS)),
            ("Message box", list(ChatInput.BINDINGS)),
            ("Conversation (focus it with Tab; Up/Down select a message)", list(ConversationView.BINDINGS)),
            ("Conversation list", list(ConversationListView.BINDINGS)),
            ("Token inspector (Ctrl+T, then click or Tab to a reply's tokens)", list(TokenView.BINDINGS)),
            ("Models screen (F4)", list(ModelsScreen.BINDINGS)),
        ]
        extra = {"Chat": [("Tab / Shift+Tab", "Move focus"), ("Left / Right", "Move a focused slider")]}
        return sections_from(groups, extra)

    # -- command palette -----------------------------------------------------------------------
    def commands(self) -> list[tuple[str, str, Callable]]:
        # The palette runs each callback with call_later, which awaits coroutines.
        chat = self.chat
        return [
            ("Stop generating", "Stop the reply in flight (Esc)", chat.action_stop),
            ("New conversation", "Start a new chat (Ctrl+N)", chat.action_new_conversation),
            ("Rename conversation", "Rename the current chat (F2)", chat.action_rename_conversation),
            ("Delete conversation", "Delete the current chat", chat.action_delete_conversation),
            ("Search conversations", "Search chat titles and text (Ctrl+F)", chat.action_search),
            ("Regenerate reply", "Generate the last reply again, keeping the old one (Ctrl+R)",
             chat.action_regenerate),
            ("Continue reply", "Let the model carry on with the last reply (Ctrl+G)",
             chat.action_continue_reply),
            ("Previous alternative", "Show the previous version of the last reply ([)",
             partial(chat.action_alternative, -1)),
            ("Next alternative", "Show the next version of the last reply (])", partial(chat.action_alternative, 1)),
            ("Edit last message", "Edit your last message and resend it (e)", chat.action_edit_last),
            ("Copy last reply", "Copy the last reply to the clipboard (c)", chat.action_copy_last),
            ("Export conversation", "Save the chat as Markdown and JSON (Ctrl+S)", chat.action_export),
            ("Toggle token inspector", "Colour reply tokens by probability (Ctrl+T)", chat.action_toggle_inspector),
            ("Show prompt", "The exact prompt the model sees (F3)", chat.action_prompt_view),
            ("Toggle side panel", "Model, system prompt and sampling (Ctrl+B)", chat.action_toggle_side_panel),
            ("Toggle conversation list", "Show or hide the chats (Ctrl+L)", chat.action_toggle_conversations),
            ("Models", "The model library: add, pull, delete, load (F4)", self.action_models),
            ("Cancel download", "Stop the running download and any queued (c on the models screen)",
             self.action_cancel_download),
            ("Help", "Every key binding (F1)", self.action_help),
        ]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, callback in self.commands():
            yield SystemCommand(title, help_text, callback)
