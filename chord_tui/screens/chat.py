"""The chat screen: conversation list, conversation, input, side panel.

Layout, keys and the user's actions live here; how a reply streams in
(the thread worker and its messages) is in reply_stream.py.
"""

from __future__ import annotations

import asyncio

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Header, Input

from chord_tui.messages import ConversationAction, ConversationChosen, MessageAction, SystemPromptChanged
from chord_tui.conversation_state import ConversationState
from chord_tui.screens.reply_stream import ReplyStreaming
from chord_tui.screens.dialogs import ConfirmDialog, EditMessageDialog, TextPromptDialog
from chord_tui.storage import ConversationSummary
from chord_tui.storage_errors import StorageError
from chord_tui.widgets.chat_input import ChatInput
from chord_tui.widgets.conversation_list import ConversationList
from chord_tui.widgets.conversation_view import ConversationView
from chord_tui.widgets.footer import FittingFooter
from chord_tui.widgets.message_view import code_blocks
from chord_tui.widgets.side_panel import SidePanel
from chord_tui.widgets.status_bar import StatusBar
from chord_tui.widgets.token_view import TokenView

# Below these widths the list and the side panel start hidden (toggle to show),
# so the conversation keeps at least ~60 columns.
LIST_MIN_WIDTH = 96
PANEL_MIN_WIDTH = 120


class ChatScreen(ReplyStreaming, Screen):
    # description: the short footer label; tooltip: the longer text for help.
    BINDINGS = [
        Binding("escape", "stop", "Stop", tooltip="Stop the reply being generated (the partial reply is kept)"),
        Binding("ctrl+n", "new_conversation", "New chat", tooltip="Start a new conversation"),
        Binding("ctrl+r", "regenerate", "Regenerate", tooltip="Regenerate the last reply, keeping the old one"),
        Binding("ctrl+g", "continue_reply", "Continue", show=False, tooltip="Let the model continue the last reply"),
        Binding("ctrl+t", "toggle_inspector", "Inspector", tooltip="Token inspector: colour tokens by probability"),
        Binding("ctrl+b", "toggle_side_panel", "Panel", tooltip="Show or hide the side panel (model, sampling)"),
        Binding("ctrl+l", "toggle_conversations", "Chats", show=False, tooltip="Show or hide the conversation list"),
        Binding("ctrl+f", "search", "Search chats", show=False, tooltip="Search conversations"),
        Binding("f2", "rename_conversation", "Rename chat", show=False, tooltip="Rename the conversation"),
        Binding("f3", "prompt_view", "Prompt", show=False, tooltip="Show the exact prompt the model sees"),
        Binding("ctrl+s", "export", "Export", show=False, tooltip="Export the conversation as Markdown and JSON"),
    ]

    inspector: reactive[bool] = reactive(False)
    show_side_panel: reactive[bool] = reactive(True)
    show_conversations: reactive[bool] = reactive(True)

    def __init__(self, store, settings, clock, *, side_panel: bool = True, cursor_blink: bool = True) -> None:
        super().__init__(id="chat")
        self.state = ConversationState(store)
        self._settings = settings
        self._clock = clock
        self._blink = cursor_blink
        self._wide_side_panel = side_panel  # the user's preference on wide terminals
        self._narrow: tuple[bool, bool] | None = None
        self._list_lock = asyncio.Lock()
        self._started_in_search: int | None = None  # listed until the search changes, even if it does not match

    # -- layout ----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(icon="♪")
        with Horizontal(id="main"):
            yield ConversationList(id="conversations", cursor_blink=self._blink)
            with Vertical(id="centre"):
                yield ConversationView(id="conversation")
                yield ChatInput(id="input", cursor_blink=self._blink)
            yield SidePanel(self._settings, id="side-panel", cursor_blink=self._blink)
        yield StatusBar(self._clock, id="status")
        yield FittingFooter()

    @property
    def conversation(self) -> ConversationView:
        return self.query_one(ConversationView)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def side_panel(self) -> SidePanel:
        return self.query_one(SidePanel)

    @property
    def chat_input(self) -> ChatInput:
        return self.query_one(ChatInput)

    async def on_mount(self) -> None:
        self.title = "chord-chat"
        self.sub_title = self.state.title
        await self.refresh_conversations()
        self.chat_input.focus()
        self.app.chat_ready()

    @property
    def panel_fits(self) -> bool:
        return self.size.width >= PANEL_MIN_WIDTH

    def on_resize(self) -> None:
        # Only crossing a threshold changes visibility, so a toggle survives resizes.
        narrow = (self.size.width < LIST_MIN_WIDTH, not self.panel_fits)
        if narrow != self._narrow:
            self._narrow = narrow
            self.show_conversations = not narrow[0]
            self.show_side_panel = self._wide_side_panel and not narrow[1]

    def watch_show_side_panel(self, show: bool) -> None:
        self.query_one("#side-panel").display = show

    def watch_show_conversations(self, show: bool) -> None:
        self.query_one("#conversations").display = show

    def watch_inspector(self, on: bool) -> None:
        self.set_class(on, "-inspect")
        if on:
            for view in self.query(TokenView):
                view.refresh_tokens()
            # focus the last reply's tokens so ←/→ select at once (in the
            # input they would move its cursor); hidden tokens give it back
            views = self.query(TokenView)
            if views:
                views.last().focus()
        elif isinstance(self.focused, TokenView):
            self.chat_input.focus()

    # -- conversations ------------------------------------------------------------------
    async def refresh_conversations(self) -> None:
        # show() clears then fills the list over two awaits; refreshes started
        # by key bindings and by message handlers run on different tasks, so
        # they must not interleave (clear, clear, fill, fill = every row twice)
        async with self._list_lock:
            cl = self.query_one(ConversationList)
            found = self.state.store.list_conversations(cl.search_text)
            current = self.state.conversation
            if current is not None and current.id == self._started_in_search and all(c.id != current.id for c in found):
                # a chat started while filtering would otherwise vanish from the list
                found.insert(0, ConversationSummary(current.id, current.title, 0.0))
            await cl.show(found, self.state.conversation_id)

    async def open_conversation(self, conversation_id: int | None) -> None:
        self.state.open(conversation_id)
        if self.state.generation is None:
            self.status.reset_reply()
            last = self.state.messages[-1] if self.state.messages else None
            n_past = (last.record.get("stats") or {}).get("n_past") if last is not None and last.role == "assistant" else None
            if isinstance(n_past, int):
                self.status.show_context(n_past)
        await self.conversation.clear()
        await self.conversation.sync(self.state.messages)
        self.side_panel.set_system_prompt(self.state.system_prompt)
        self.sub_title = self.state.title

    async def show_state(self) -> None:
        await self.conversation.sync(self.state.messages)
        self.sub_title = self.state.title
        await self.refresh_conversations()

    @on(ConversationList.SearchChanged)
    async def _search_changed(self) -> None:
        self._started_in_search = None
        await self.refresh_conversations()

    async def on_conversation_chosen(self, message: ConversationChosen) -> None:
        if self._busy() or message.conversation_id == self.state.conversation_id:
            return
        await self.open_conversation(message.conversation_id)

    def on_conversation_action(self, message: ConversationAction) -> None:
        if message.action == "rename":
            self.rename_conversation(message.conversation_id)
        elif message.action == "delete":
            self.delete_conversation(message.conversation_id)

    async def action_new_conversation(self) -> None:
        if self._busy():
            return
        await self.open_conversation(None)
        await self.refresh_conversations()
        self.chat_input.focus()

    def action_rename_conversation(self) -> None:
        if self.state.conversation_id is None:
            self.notify("Nothing to rename yet: send a message first.", severity="warning")
        else:
            self.rename_conversation(self.state.conversation_id)

    def action_delete_conversation(self) -> None:
        if self.state.conversation_id is not None:
            self.delete_conversation(self.state.conversation_id)

    @work
    async def rename_conversation(self, conversation_id: int) -> None:
        current = self.state.store.load(conversation_id).title
        title = await self.app.push_screen_wait(TextPromptDialog("Rename conversation", current, self._blink))
        if title:
            self.state.store.rename(conversation_id, title)
            if conversation_id == self.state.conversation_id:
                self.state.reload()
                self.sub_title = title
            await self.refresh_conversations()

    @work
    async def delete_conversation(self, conversation_id: int) -> None:
        if conversation_id == self.state.conversation_id and self._busy():
            return
        title = self.state.store.load(conversation_id).title
        consequence = ("Its messages are deleted from the conversation database; this cannot be undone. "
                       "Models and exported files are not touched.")
        if not await self.app.push_screen_wait(ConfirmDialog(f"Delete the conversation “{title}”?", consequence)):
            return
        self.state.store.delete(conversation_id)
        if conversation_id == self.state.conversation_id:
            await self.open_conversation(None)
        await self.refresh_conversations()
        self.notify(f"Deleted “{title}”")

    def action_search(self) -> None:
        self.show_conversations = True
        self.query_one("#conversation-search", Input).focus()

    def on_system_prompt_changed(self, message: SystemPromptChanged) -> None:
        self.state.set_system_prompt(message.text)

    # -- panels -------------------------------------------------------------------------
    def action_toggle_side_panel(self) -> None:
        self.show_side_panel = not self.show_side_panel
        if self.panel_fits:
            self._wide_side_panel = self.show_side_panel
            self.app.remember_side_panel(self.show_side_panel)

    def action_toggle_conversations(self) -> None:
        self.show_conversations = not self.show_conversations

    def action_toggle_inspector(self) -> None:
        self.inspector = not self.inspector

    def action_prompt_view(self) -> None:
        draft = self.chat_input.text if self.chat_input.text.strip() else ""
        self.app.show_prompt(self.state.engine_messages(draft=draft), has_draft=bool(draft))

    def action_export(self) -> None:
        try:
            md_path, json_path = self.state.export(self.app.export_dir)
        except (ValueError, OSError) as err:
            self.notify(f"Export failed: {err}", severity="error")
        else:
            self.notify(f"Exported to {md_path} and {json_path.name}", title="Exported", timeout=8)

    # -- sending and replies ----------------------------------------------------------------
    def _busy(self) -> bool:
        if self.state.generation is not None:
            self.notify("A reply is being generated: press Esc to stop it first.", severity="warning")
            return True
        return False

    def _ready(self) -> bool:
        if self._busy():
            return False
        if self.app.loading_model:
            self.notify("The model is still loading.", severity="warning")
            return False
        if self.app.engine.info is None:
            self.notify("No model loaded: press F4 to pick one.", severity="warning")
            return False
        return True

    async def on_chat_input_submitted(self, message: ChatInput.Submitted) -> None:
        text = message.text
        if not text.strip() or not self._ready():
            return
        info = self.app.engine.info
        new_chat = self.state.conversation_id is None
        try:
            gen = self.state.send(text, info.name if info else "")
        except StorageError as err:  # the text stays in the input: nothing the user wrote is lost
            self.notify(f"Your message was not sent, because it could not be saved: {err}", title="Not sent",
                        severity="error", timeout=15)
            return
        self.chat_input.clear()
        if new_chat and self.query_one(ConversationList).search_text:
            self._started_in_search = self.state.conversation_id
        await self.show_state()
        await self.start(gen)

    # -- message actions --------------------------------------------------------------------
    def _last(self, role: str) -> int | None:
        for message in reversed(self.state.messages):
            if message.role == role:
                return message.id
        return None

    async def action_regenerate(self) -> None:
        if (mid := self._last("assistant")) is not None:
            await self.on_message_action(MessageAction("regenerate", mid))
        else:
            self.notify("Nothing to regenerate yet: there is no reply.", severity="warning")

    async def action_continue_reply(self) -> None:
        if (mid := self._last("assistant")) is not None:
            await self.on_message_action(MessageAction("continue", mid))
        else:
            self.notify("Nothing to continue yet: there is no reply.", severity="warning")

    async def action_copy_last(self) -> None:
        if (mid := self._last("assistant")) is not None:
            await self.on_message_action(MessageAction("copy", mid))

    async def action_edit_last(self) -> None:
        if (mid := self._last("user")) is not None:
            await self.on_message_action(MessageAction("edit", mid))

    async def action_alternative(self, delta: int) -> None:
        if (mid := self._last("assistant")) is not None:
            await self.on_message_action(MessageAction("next" if delta > 0 else "prev", mid))

    async def on_message_action(self, message: MessageAction) -> None:
        _, stored = self.state.find(message.message_id)
        if stored is None:
            return
        action = message.action
        if action == "copy":
            self.app.copy_to_clipboard(stored.content)
            self.notify(f"Copied {len(stored.content)} characters")
        elif action == "copy_code":
            blocks = code_blocks(stored.content)
            if blocks:
                self.app.copy_to_clipboard("\n\n".join(blocks))
                self.notify(f"Copied {len(blocks)} code block{'s' if len(blocks) > 1 else ''}")
            else:
                self.notify("That message has no code blocks.", severity="warning")
        elif action == "edit":
            if stored.role != "user":
                self.notify("Only your own messages can be edited; use regenerate or continue for a reply.",
                            severity="warning")
            elif not self._busy():
                self.edit_message(stored.id, stored.content)
        elif action in ("prev", "next"):
            if not self._busy() and self.state.flip(stored.id, 1 if action == "next" else -1):
                await self.show_state()
        elif action in ("regenerate", "continue") and self._ready():
            try:
                gen = (self.state.regenerate if action == "regenerate" else self.state.continue_reply)(stored.id)
            except ValueError as err:
                self.notify(str(err), severity="warning")
                return
            await self.show_state()
            await self.start(gen)
            seed = self.app.live_settings.snapshot().seed
            if action == "regenerate" and seed is not None:
                # otherwise "regenerate does nothing" is all the user sees
                self.notify(f"The seed is fixed at {seed}: the same settings give the same reply. "
                            "Clear the seed field for a different one.", timeout=6)

    @work
    async def edit_message(self, message_id: int, text: str) -> None:
        new_text = await self.app.push_screen_wait(EditMessageDialog(text, self._blink))
        if new_text is None or not self._ready():
            return
        try:
            gen = self.state.edit_and_resend(message_id, new_text)
        except ValueError as err:
            self.notify(str(err), severity="warning")
            return
        await self.show_state()
        await self.start(gen)
