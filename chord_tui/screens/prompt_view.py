"""The exact prompt the model sees, special tokens highlighted, with its length.

What it shows is what the next request would send: with a message typed
in the input, the whole prompt that sending it makes (up to the header
that opens the reply); without one, the conversation so far and nothing
more, since the next request starts with a message not yet written.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content, Span
from textual.screen import ModalScreen
from textual.widgets import Label, Static

SPECIAL_STYLE = "bold reverse"  # reverse still reads under NO_COLOR


def highlight(pieces: list[tuple[str, bool]]) -> Content:
    text, spans, offset = [], [], 0
    for piece, special in pieces:
        if special:
            spans.append(Span(offset, offset + len(piece), SPECIAL_STYLE))
        text.append(piece)
        offset += len(piece)
    return Content("".join(text), spans)


def prompt_request(messages: list[dict[str, str]], has_draft: bool) -> tuple[list[dict[str, str]], bool, str]:
    """(messages, whether the reply header is added, a note for the title) for
    F3, given the engine's messages (with the draft last when ``has_draft``)."""
    if has_draft:
        return messages, True, " (the request your unsent message makes)"
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"].strip():
        messages = messages[:-1]  # an empty reply is never sent back to the model
    return messages, False, " (the conversation so far: your next message and the reply header follow it)"


class PromptScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f3,q", "dismiss", "Close")]

    def __init__(self, prompt: str, pieces: list[tuple[str, bool]], n_tokens: int, note: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.prompt = prompt
        self.pieces = pieces
        self.n_tokens = n_tokens
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-full", id="prompt-dialog"):
            yield Label(f"Rendered prompt — {self.n_tokens} tokens{self.note}", id="prompt-title")
            with VerticalScroll(id="prompt-scroll"):
                content = highlight(self.pieces) if self.pieces else Content(self.prompt)
                yield Static(content, id="prompt-text")
            yield Label("special tokens highlighted · Esc closes", classes="dialog-hint")
