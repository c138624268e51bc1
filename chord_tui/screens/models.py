"""The model library: list, details, add, pull, delete, default, load.

Every engine call runs off the UI thread (``asyncio.to_thread`` inside a
worker): listing the library may discover packaged models, and deleting
removes files. Downloads belong to the App (chord_tui/downloads.py), so
leaving this screen never stops one: this screen queues pulls, cancels them
with ``c``, and shows the progress the App forwards. Loading is the App's
job too (the chat screen needs it); this screen asks for it and shows the
progress the App forwards.
"""

from __future__ import annotations

import asyncio

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Header, Input, Label, ProgressBar, Static

from chord_core.errors import ChordError
from chord_core.model_facts import BASE_MODEL_LABEL, format_params, format_size
from chord_tui.engine import LoadedModelInfo, ModelEntry
from chord_tui.screens.dialogs import ConfirmDialog
from chord_tui.widgets.footer import FittingFooter
from chord_tui.widgets.path_suggester import PathSuggester

# Most needed first: a narrow terminal cuts the table at the right, so at
# 80x24 name, quant and size stay in view. The rest is in the details pane.
COLUMNS = ("", "Name", "Quant", "Size", "Kind", "Params", "Arch", "Ctx")


def kind(entry: ModelEntry) -> str:
    """"chat", "base" for a model without a chat template (completion only), or "remote"."""
    if entry.remote:
        return "remote"
    return "chat" if entry.has_chat_template else "base"


def is_loaded(entry: ModelEntry, info: LoadedModelInfo | None) -> bool:
    # the name too: two remote entries may share a server's URL
    return info is not None and info.path == entry.path and info.name == entry.name


def table_row(entry: ModelEntry, mark: str) -> tuple[str, ...]:
    """A row in COLUMNS' order; a remote model has no file to measure: dashes."""
    if entry.remote:
        return (mark, entry.name, "-", "-", kind(entry), "-", "-", str(entry.context_length or "-"))
    return (mark, entry.name, entry.quant, format_size(entry.size_bytes), kind(entry),
            format_params(entry.n_params), entry.architecture, str(entry.context_length))


def remote_details(entry: ModelEntry, loaded: bool) -> str:
    lines = [entry.name + ("  (loaded)" if loaded else ""), "",
             "remote        an OpenAI-compatible server runs it",
             f"url           {entry.path}", f"template      {entry.template_source}"]
    lines += [f"{key:<13} {value}" for key, value in entry.metadata.items()]
    return "\n".join(lines)


def details(entry: ModelEntry | None, loaded: bool) -> str:
    if entry is None:
        return "The library is empty: add a .gguf file or pull one (a URL or hf:owner/repo/file.gguf)."
    if entry.remote:
        return remote_details(entry, loaded)
    lines = [
        entry.name + ("  (default)" if entry.is_default else "") + ("  (loaded)" if loaded else ""),
        "",
        f"path          {entry.path}",
        f"size          {format_size(entry.size_bytes)}",
        f"architecture  {entry.architecture}",
        f"parameters    {format_params(entry.n_params)}",
        f"quantisation  {entry.quant}",
        f"context       {entry.context_length}",
        f"template      {entry.template_source}",
        f"kind          {'chat' if entry.has_chat_template else BASE_MODEL_LABEL}",
        f"source        {entry.source}",
    ]
    if entry.metadata:
        lines += ["", "metadata"] + [f"· {key}: {value}" for key, value in entry.metadata.items()]
    return "\n".join(lines)


def removal_consequence(entry: ModelEntry, loaded: bool) -> str:
    """What deleting ``entry`` does, as the library does it: a file in the
    library's folder is deleted, one added from elsewhere stays."""
    if entry.remote:
        return (f"Only the library entry is removed: it is a remote model at {entry.path}, so nothing on disk "
                "is deleted." + (" The chat keeps using it until you load another." if loaded else ""))
    parts = entry.metadata.get("shards", 1)
    files = f"its file {entry.path}" if parts == 1 else f"its {parts} files ({entry.path} and the rest)"
    if entry.file_in_library:
        text = f"{files[0].upper()}{files[1:]} will be deleted from disk; this cannot be undone."
    else:
        text = f"Only the library entry is removed: {files} stays on disk."
    if loaded:
        text += " It is the loaded model: the chat keeps using it until you load another."
    return text


class ModelsScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "load", "Load", show=False),
        Binding("d", "set_default", "Set default"),
        Binding("delete,x", "delete", "Delete"),
        Binding("c", "cancel_download", "Cancel download", tooltip="Stop the running download and any queued"),
    ]

    def __init__(self, cursor_blink: bool = True) -> None:
        super().__init__(id="models")
        self._blink = cursor_blink
        self.entries: list[ModelEntry] = []

    def compose(self) -> ComposeResult:
        yield Header(icon="♪")
        with Horizontal(id="models-main"):
            with Vertical(id="models-left"):
                yield DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
                with Horizontal(classes="models-row"):
                    path = Input(placeholder="path/to/model.gguf", id="add-path", suggester=PathSuggester(), compact=True)
                    path.cursor_blink = self._blink
                    yield path
                    yield Button("Add file", id="add", compact=True)
                with Horizontal(classes="models-row"):
                    source = Input(placeholder="https://…/model.gguf or hf:owner/repo/file.gguf", id="pull-source", compact=True)
                    source.cursor_blink = self._blink
                    yield source
                    yield Button("Pull", id="pull", compact=True)
                with Horizontal(classes="models-row", id="pull-row"):
                    yield Label("", id="pull-label")
                    yield ProgressBar(id="pull-progress", show_eta=False)
                with Horizontal(classes="models-row", id="load-row"):
                    yield Label("", id="load-label")
                    yield ProgressBar(id="load-progress", show_eta=False)
                with Horizontal(classes="models-row"):
                    yield Button("Load", id="load", variant="primary", compact=True)
                    yield Button("Set default", id="set-default", compact=True)
                    yield Button("Delete", id="delete", variant="error", compact=True)
            with VerticalScroll(id="model-details-scroll"):
                yield Static("", id="model-details", markup=False)
        yield FittingFooter()

    @property
    def table(self) -> DataTable:
        return self.query_one(DataTable)

    def on_mount(self) -> None:
        self.title = "chord-chat"
        self.sub_title = "Models"
        self.table.add_columns(*COLUMNS)
        self.show_download()  # one may be running: downloads outlive this screen
        self.query_one("#load-row").display = bool(self.app.loading_model)
        self.refresh_models()
        self.table.focus()

    @work(group="models", exclusive=True, exit_on_error=False)
    async def refresh_models(self, select: str | None = None) -> None:
        # discovery reads package metadata and may unpack the demo model: never on the UI thread
        try:
            entries = list(await asyncio.to_thread(self.app.engine.list_models))
        except (ChordError, OSError) as err:  # a damaged library index must not take the app down
            entries = []
            self.notify(f"Model library: {err}", severity="error", timeout=10)
        self.show_entries(entries, select)

    def show_entries(self, entries: list[ModelEntry], select: str | None = None) -> None:
        info = self.app.engine.info
        current = select or (self.selected.name if self.selected else None)
        self.entries = entries
        table = self.table
        table.clear()
        for entry in self.entries:
            mark = ("●" if is_loaded(entry, info) else " ") + ("★" if entry.is_default else " ")
            table.add_row(*table_row(entry, mark), key=entry.name)
        names = [e.name for e in self.entries]
        if current in names:
            table.move_cursor(row=names.index(current))
        self.show_details()

    @property
    def selected(self) -> ModelEntry | None:
        row = self.table.cursor_row if self.entries else -1
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def show_details(self) -> None:
        entry = self.selected
        info = self.app.engine.info
        self.query_one("#model-details", Static).update(details(entry, entry is not None and is_loaded(entry, info)))

    def on_data_table_row_highlighted(self) -> None:
        self.show_details()

    def on_data_table_row_selected(self) -> None:
        self.action_load()

    # -- actions ---------------------------------------------------------------------
    def action_load(self) -> None:
        if (entry := self.selected) is not None:
            self.app.load_model(entry.name)

    def action_set_default(self) -> None:
        if (entry := self.selected) is not None:
            self.set_default(entry)

    @work(group="library", exit_on_error=False)
    async def set_default(self, entry: ModelEntry) -> None:
        try:
            await asyncio.to_thread(self.app.engine.set_default, entry.name)
        except Exception as err:
            self.notify(f"Could not set the default: {err}", severity="error")
            return
        self.notify(f"{entry.name} is now the default model")
        self.refresh_models(entry.name)

    def action_delete(self) -> None:
        if (entry := self.selected) is not None:
            self.confirm_delete(entry)

    @work
    async def confirm_delete(self, entry: ModelEntry) -> None:
        loaded = self.app.engine.info is not None and self.app.engine.info.name == entry.name
        dialog = ConfirmDialog(f"Delete {entry.name}?", removal_consequence(entry, loaded))
        if not await self.app.push_screen_wait(dialog):
            return
        try:
            await asyncio.to_thread(self.app.engine.remove_model, entry.name)
        except Exception as err:
            self.notify(f"Could not delete {entry.name}: {err}", severity="error")
            return
        if self.app.config.last_model in (entry.name, entry.path):
            # the next start opens the library's default, not a model that is gone
            self.app.config.last_model = None
            self.app.schedule_config_save()
        done = ("from the library (a remote model: nothing on disk was deleted)" if entry.remote
                else "and deleted its file" if entry.file_in_library
                else f"from the library; its file stays at {entry.path}")
        self.notify(f"Removed {entry.name} {done}")
        self.refresh_models()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"add": self.action_add, "pull": self.action_pull, "load": self.action_load,
                   "set-default": self.action_set_default, "delete": self.action_delete}
        if event.button.id in actions:
            actions[event.button.id]()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "add-path":
            self.action_add()
        elif event.input.id == "pull-source":
            self.action_pull()

    # -- add a file --------------------------------------------------------------------
    def action_add(self) -> None:
        path = self.query_one("#add-path", Input).value.strip()
        if path:
            self.add_file(path)

    @work(group="add", exit_on_error=False)
    async def add_file(self, path: str) -> None:
        # Adding reads the file's header (and may hash it): keep it off the UI thread.
        try:
            entry = await asyncio.to_thread(self.app.engine.add_model, path)
        except Exception as err:
            self.notify(f"Could not add {path}: {err}", title="Add failed", severity="error", timeout=10)
            return
        self.query_one("#add-path", Input).value = ""
        self.notify(f"Added {entry.name}")
        self.refresh_models(entry.name)

    # -- pull: the App's downloads ------------------------------------------------------
    def action_pull(self) -> None:
        source = self.query_one("#pull-source", Input).value.strip()
        if not source:
            return
        self.query_one("#pull-source", Input).value = ""  # ready for the next one: pulls queue
        self.app.download(source)

    def action_cancel_download(self) -> None:
        self.app.action_cancel_download()

    def show_download(self) -> None:
        """Draw the App's running download (the App calls this on every change)."""
        download = self.app.downloads.current
        self.query_one("#pull-row").display = download is not None
        if download is None:
            return
        self.query_one("#pull-progress", ProgressBar).update(total=download.total_bytes,
                                                             progress=download.done_bytes)
        total = f" / {format_size(download.total_bytes)}" if download.total_bytes else ""
        waiting = len(self.app.downloads.waiting)
        queued = f" (+{waiting} queued)" if waiting else ""
        self.query_one("#pull-label", Label).update(
            f"{download.label}: {format_size(download.done_bytes)}{total}{queued}")

    # -- load progress (forwarded by the App) ---------------------------------------------
    def show_load(self, label: str, fraction: float | None, done: bool = False, failed: bool = False) -> None:
        self.query_one("#load-row").display = not done or failed  # a failure stays readable
        self.query_one("#load-label", Label).update(label)
        bar = self.query_one("#load-progress", ProgressBar)
        if fraction is None or fraction < 0:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=round(fraction * 100))
        if done:
            self.refresh_models()
