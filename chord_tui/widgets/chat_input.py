"""The message box: a multi-line TextArea where Enter sends (the chat's
input, and the edit dialog's).

Terminals report Shift+Enter only with the kitty keyboard protocol, so
Ctrl+J (a plain line feed everywhere) inserts a newline too.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

NEWLINE_KEYS = ("shift+enter", "ctrl+j")


class ChatInput(TextArea):
    BINDINGS = [
        Binding("enter", "submit", "Send", show=True),
        Binding("shift+enter,ctrl+j", "newline", "Newline", show=False),
    ]

    @dataclass
    class Submitted(Message):
        chat_input: "ChatInput"
        text: str

        @property
        def control(self) -> "ChatInput":
            return self.chat_input

    def __init__(self, text: str = "", *, id: str | None = None, cursor_blink: bool = True,
                 placeholder: str = "Message (Enter sends, Ctrl+J newline)") -> None:
        super().__init__(
            text,
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            compact=True,
            placeholder=placeholder,
        )
        self.cursor_blink = cursor_blink

    async def _on_key(self, event: events.Key) -> None:
        # TextArea inserts "\n" for Enter in its own _on_key; prevent_default
        # stops that base handler so Enter can mean "send" instead.
        if event.key == "enter":
            event.prevent_default()
            event.stop()
            self.action_submit()
        elif event.key in NEWLINE_KEYS:
            event.prevent_default()
            event.stop()
            self.action_newline()

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        start, end = self.selection
        self.replace("\n", start, end, maintain_selection_offset=False)
