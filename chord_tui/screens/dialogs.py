"""Small modal dialogs: confirm, ask for a line of text, edit a message."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from chord_tui.widgets.chat_input import ChatInput


class ConfirmDialog(ModalScreen[bool]):
    """Asks before something that cannot be undone: the question, then what
    happens (to files on disk too), both wrapped in full. The buttons name
    their keys, and the safe choice has the focus, so Enter changes nothing."""

    BINDINGS = [
        Binding("escape,n", "dismiss(False)", "Cancel"),
        Binding("y", "dismiss(True)", "Yes"),
    ]

    def __init__(self, question: str, consequence: str = "", confirm: str = "Delete") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.consequence = consequence
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-question", markup=False)
            if self.consequence:
                yield Static(self.consequence, classes="dialog-consequence", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.confirm}  y", variant="error", id="confirm")
                yield Button("Cancel  n / Esc", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")


class TextPromptDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, question: str, value: str = "", cursor_blink: bool = True) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.value = value
        self._cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-question", markup=False)
            field = Input(self.value, id="dialog-input")
            field.cursor_blink = self._cursor_blink
            yield field
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        value = self.query_one("#dialog-input", Input).value.strip()
        self.dismiss(value or None if event.button.id == "ok" else None)


class EditMessageDialog(ModalScreen[str | None]):
    """Edit a sent message; saving truncates the chat there and resends.
    Keys as in the chat's input: Enter resends, Shift+Enter / Ctrl+J add a line."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+s", "save", "Resend"),
    ]

    def __init__(self, text: str, cursor_blink: bool = True) -> None:
        super().__init__(classes="dialog-screen")
        self.text = text
        self._cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Static("Edit message: Enter resends, Ctrl+J adds a line; later messages are replaced.",
                         classes="dialog-question")
            yield ChatInput(self.text, id="edit-text", cursor_blink=self._cursor_blink, placeholder="")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Resend  Enter", variant="primary", id="ok")
                yield Button("Cancel  Esc", id="cancel")

    def on_chat_input_submitted(self, event: ChatInput.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        text = self.query_one("#edit-text", ChatInput).text
        self.dismiss(text if text.strip() else None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.action_save()
        else:
            self.dismiss(None)
