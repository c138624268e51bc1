"""The centre column: the conversation's messages, one ``MessageView`` each.

``sync`` reconciles the widgets with the stored messages by id, so a new
message or a flipped alternative touches only the widgets that changed
(re-rendering every Markdown block on each send would grow with the chat).
The view is focusable: Up/Down select a message and single keys act on it.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from chord_tui.messages import MessageAction
from chord_tui.widgets.message_view import MessageView

EMPTY_TEXT = "Type a message below and press Enter.  F1: help  F4: models  Ctrl+P: commands"


class ConversationView(VerticalScroll, can_focus=True):
    BINDINGS = [
        Binding("up,k", "select(-1)", "Previous message", show=False),
        Binding("down,j", "select(1)", "Next message", show=False),
        Binding("c,y", "act('copy')", "Copy message", show=False),
        Binding("b", "act('copy_code')", "Copy the message's code blocks", show=False),
        Binding("e", "act('edit')", "Edit message", show=False),
        Binding("r", "act('regenerate')", "Regenerate", show=False),
        Binding("g", "act('continue')", "Continue reply", show=False),
        Binding("left_square_bracket", "act('prev')", "Previous alternative", show=False),
        Binding("right_square_bracket", "act('next')", "Next alternative", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.selected_index = -1

    def compose(self):
        yield Static(EMPTY_TEXT, id="empty-hint")

    def on_mount(self) -> None:
        # Anchored: follows a streaming reply, and (Textual's anchoring) sits a
        # short conversation at the bottom, next to the input, like chat apps.
        self.anchor()

    @property
    def messages(self) -> list[MessageView]:
        # Direct children only: a query would walk every Markdown block too.
        return [child for child in self.children if isinstance(child, MessageView)]

    def by_id(self, message_id: int) -> MessageView | None:
        for view in self.messages:
            if view.message_id == message_id:
                return view
        return None

    @property
    def selected(self) -> MessageView | None:
        views = self.messages
        if 0 <= self.selected_index < len(views):
            return views[self.selected_index]
        return None

    async def sync(self, stored: list) -> None:
        """Show ``stored`` (StoredMessage-like objects, in order)."""
        wanted = {m.id for m in stored}
        existing = {view.message_id: view for view in self.messages}
        stale = [view for mid, view in existing.items() if mid not in wanted]
        if stale:
            await self.remove_children(stale)
        new_views: list[MessageView] = []
        for message in stored:
            view = existing.get(message.id)
            if view is None:
                new_views.append(MessageView(message.id, message.role, message.content,
                                             alternatives=len(message.alternatives), active=message.active,
                                             record=message.record))
            elif not view.streaming and view.signature() != (
                message.content, len(message.alternatives), message.active,
                len(message.record.get("tokens", ())),
            ):
                await view.set_message(message.content, len(message.alternatives), message.active, message.record)
        if new_views:
            await self.mount_all(new_views)
        self.query_one("#empty-hint").display = not stored
        if self.selected_index >= len(stored):
            self.selected_index = len(stored) - 1
        self._mark_selected()

    async def clear(self) -> None:
        await self.remove_children(MessageView)
        self.selected_index = -1
        self.query_one("#empty-hint").display = True

    def _mark_selected(self) -> None:
        for index, view in enumerate(self.messages):
            view.set_class(index == self.selected_index, "-selected")

    def action_select(self, delta: int) -> None:
        views = self.messages
        if not views:
            return
        if self.selected_index < 0:
            self.selected_index = len(views) - 1 if delta < 0 else 0
        else:
            self.selected_index = max(0, min(len(views) - 1, self.selected_index + delta))
        self._mark_selected()
        self.scroll_to_widget(views[self.selected_index], animate=False)

    def action_act(self, action: str) -> None:
        view = self.selected
        if view is None and self.messages:
            view = self.messages[-1]
        if view is not None:
            self.post_message(MessageAction(action, view.message_id))
