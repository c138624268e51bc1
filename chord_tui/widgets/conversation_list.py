"""The left column: a search box over a list of saved conversations.

It only shows what it is given and posts requests; the chat screen owns
the store and decides what happens.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, ListItem, ListView

from chord_tui.messages import ConversationAction, ConversationChosen


class ConversationItem(ListItem):
    def __init__(self, conversation_id: int, title: str) -> None:
        super().__init__(Label(title, markup=False))
        self.conversation_id = conversation_id
        self.title = title


class ConversationListView(ListView):
    BINDINGS = [
        Binding("f2", "rename", "Rename", show=False),
        Binding("delete", "delete", "Delete conversation", show=False),
    ]

    def _highlighted_id(self) -> int | None:
        item = self.highlighted_child
        return item.conversation_id if isinstance(item, ConversationItem) else None

    def action_rename(self) -> None:
        if (conv_id := self._highlighted_id()) is not None:
            self.post_message(ConversationAction("rename", conv_id))

    def action_delete(self) -> None:
        if (conv_id := self._highlighted_id()) is not None:
            self.post_message(ConversationAction("delete", conv_id))


class ConversationList(Vertical):
    @dataclass
    class SearchChanged(Message):
        text: str

    def __init__(self, *, id: str | None = None, cursor_blink: bool = True) -> None:
        super().__init__(id=id)
        self._cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        yield Label("Conversations", classes="panel-heading")
        search = Input(placeholder="search…", id="conversation-search", compact=True)
        search.cursor_blink = self._cursor_blink
        yield search
        yield ConversationListView(id="conversation-items")

    @property
    def list_view(self) -> ConversationListView:
        return self.query_one(ConversationListView)

    @property
    def search_text(self) -> str:
        return self.query_one("#conversation-search", Input).value

    def titles(self) -> list[str]:
        return [item.title for item in self.list_view.query(ConversationItem)]

    async def show(self, conversations: list, current: int | None) -> None:
        """Replace the items with ``conversations`` (ConversationSummary-like)."""
        view = self.list_view
        await view.clear()
        items = [ConversationItem(c.id, c.title) for c in conversations]
        await view.extend(items)
        # highlight the open conversation, else the first match, so Enter opens something
        view.index = next((i for i, item in enumerate(items) if item.conversation_id == current), 0 if items else None)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "conversation-search":
            event.stop()
            self.post_message(self.SearchChanged(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the search box opens the highlighted match."""
        if event.input.id == "conversation-search":
            event.stop()
            item = self.list_view.highlighted_child
            if isinstance(item, ConversationItem):
                self.post_message(ConversationChosen(item.conversation_id))

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, ConversationItem):
            self.post_message(ConversationChosen(event.item.conversation_id))
