"""The token inspector: a reply's tokens coloured by probability.

Each token is a span with an ``@click`` action, so a mouse click selects it;
Left/Right move the selection from the keyboard. The selected token's top-5
alternatives (from ``TokenEvent.alternatives``) are shown underneath.
Colours carry the probability, and low-probability tokens are also
underlined so the inspector still says something under NO_COLOR. A token
whose probability is unknown (a remote server that sends no
log-probabilities) has no colour, and the pane says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.content import Content, Span
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from chord_tui.token_records import TokenRecord

# (lowest probability, background) from confident to surprised
BANDS: tuple[tuple[float, str], ...] = (
    (0.9, "#1f5f3a"),
    (0.6, "#4f6b1f"),
    (0.3, "#7a5a12"),
    (0.1, "#8a3a12"),
    (0.0, "#8a1f2a"),
)
UNDERLINE_BELOW = 0.3
UNKNOWN_STYLE = "dim"  # a token whose probability the server did not send
UNAVAILABLE = "probability unavailable: the server sent no log-probabilities (logprobs) for this reply"


def band(prob: float) -> str:
    for low, colour in BANDS:
        if prob >= low:
            return colour
    return BANDS[-1][1]


def visible(piece: str) -> str:
    """Show whitespace-only pieces so they can be seen and clicked."""
    if piece and not piece.strip():
        return piece.replace(" ", "·").replace("\n", "↵\n").replace("\t", "→")
    return piece


class TokenView(Static, can_focus=True):
    BINDINGS = [
        Binding("left", "move(-1)", "Previous token", show=False),
        Binding("right", "move(1)", "Next token", show=False),
        Binding("home", "jump(0)", "First token", show=False),
        Binding("end", "jump(-1)", "Last token", show=False),
    ]

    cursor: reactive[int] = reactive(-1)

    @dataclass
    class Selected(Message):
        token_view: "TokenView"
        index: int

        @property
        def control(self) -> "TokenView":
            return self.token_view

    def __init__(self, tokens: list[TokenRecord] | None = None, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.tokens: list[TokenRecord] = list(tokens or [])

    def on_mount(self) -> None:
        self.refresh_tokens()

    def set_tokens(self, tokens: list[TokenRecord]) -> None:
        """Another reply's tokens (a regenerate, a flip): the selection was in the old ones."""
        self.tokens = list(tokens)
        if self.cursor != -1:
            self.cursor = -1  # clears the alternatives pane too (Selected(-1))
        self.refresh_tokens()

    def add_tokens(self, tokens: list[TokenRecord]) -> None:
        self.tokens.extend(tokens)
        # Rebuilding costs O(reply length); skip it while the inspector is off
        # (the chat screen calls refresh_tokens when it is switched on).
        if self.styles.display != "none" and self.display:
            self.refresh_tokens()

    def build(self) -> Content:
        text_parts: list[str] = []
        spans: list[Span] = []
        offset = 0
        underline = self.app.no_color
        for index, (piece, prob, _alts) in enumerate(self.tokens):
            shown = visible(piece)
            style = UNKNOWN_STYLE if prob is None else f"on {band(prob)}"
            if index == self.cursor:
                style = "reverse bold"
            elif underline and prob is not None and prob < UNDERLINE_BELOW:
                style += " underline"
            spans.append(Span(offset, offset + len(shown), f"{style} @click=select({index})"))
            text_parts.append(shown)
            offset += len(shown)
        return Content("".join(text_parts), spans)

    def refresh_tokens(self) -> None:
        self.update(self.build())

    def watch_cursor(self, cursor: int) -> None:
        if self.is_mounted:
            self.refresh_tokens()
            self.post_message(self.Selected(self, cursor))

    def selected(self) -> TokenRecord | None:
        if 0 <= self.cursor < len(self.tokens):
            return self.tokens[self.cursor]
        return None

    def action_select(self, index: int) -> None:
        self.focus()
        self.cursor = index

    def action_move(self, delta: int) -> None:
        if not self.tokens:
            return
        start = self.cursor if self.cursor >= 0 else (-1 if delta > 0 else len(self.tokens))
        self.cursor = max(0, min(len(self.tokens) - 1, start + delta))

    def action_jump(self, index: int) -> None:
        if self.tokens:
            self.cursor = index % len(self.tokens)


def describe(token: TokenRecord | None, index: int) -> str:
    """The alternatives pane's text for the selected token."""
    if token is None:
        return "Select a token (click, or ←/→) to see its alternatives."
    piece, prob, alts = token
    if prob is None:
        return f"token {index + 1}: {piece!r}  {UNAVAILABLE}"
    lines = [f"token {index + 1}: {piece!r}  p={prob:.3f}   top-5:"]
    for text, alt_prob in alts[:5]:
        mark = "▸" if text == piece else "·"  # not a space: leading spaces are trimmed
        lines.append(f"{mark} {text!r:<24} {alt_prob:.3f}")
    return "\n".join(lines)
