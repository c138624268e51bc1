"""One message of the conversation: a header line and its body.

The body is a ``Markdown`` widget fed through ``Markdown.get_stream`` while
a reply streams (the stream coalesces appends when they come faster than
Markdown can re-parse). In inspector mode an assistant message shows a
``TokenView`` instead, plus the selected token's alternatives.
"""

from __future__ import annotations

import re
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content, Span
from markdown_it import MarkdownIt
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownFence, MarkdownStream

from chord_tui.messages import MessageAction
from chord_tui.token_records import TokenRecord, tokens_from_record
from chord_tui.widgets.token_view import TokenView, describe

ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System"}
CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def code_blocks(markdown: str) -> list[str]:
    return [block.rstrip("\n") for block in CODE_BLOCK.findall(markdown)]


class CopyableFence(MarkdownFence):
    """A code block that copies its code when clicked."""

    def on_mount(self) -> None:
        self.tooltip = "click to copy"

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.app.copy_to_clipboard(self.code)
        self.notify(f"Copied the code block ({len(self.code.splitlines())} lines)")


def _soft_breaks_are_hard(state) -> None:
    for token in state.tokens:
        for child in token.children or ():
            if child.type == "softbreak":
                child.type = "hardbreak"


def chat_markdown_parser() -> MarkdownIt:
    # Models write poems, addresses and step lists with single newlines; like
    # other chat apps, show each as a line break instead of joining the lines.
    # (markdown-it's "breaks" option only changes its HTML renderer, so the
    # tokens Textual reads are rewritten instead.)
    md = MarkdownIt("gfm-like")
    md.core.ruler.push("soft_breaks_are_hard", _soft_breaks_are_hard)
    return md


class ChatMarkdown(Markdown):
    BLOCKS = {**Markdown.BLOCKS, "fence": CopyableFence, "code_block": CopyableFence}

    def __init__(self, markdown: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("parser_factory", chat_markdown_parser)
        super().__init__(markdown, **kwargs)


class MessageHeader(Static):
    """The role and action links; a link's ``@click`` action runs here."""

    def action_message_action(self, action: str) -> None:
        view = self.parent
        if isinstance(view, MessageView):
            self.post_message(MessageAction(action, view.message_id))


class MessageView(Vertical):
    def __init__(self, message_id: int, role: str, content: str, *, alternatives: int = 1,
                 active: int = 0, record: dict[str, Any] | None = None) -> None:
        super().__init__(classes=f"message -{role}")
        self.message_id = message_id
        self.role = role
        self.content = content
        self.n_alternatives = alternatives
        self.active = active
        self.tokens: list[TokenRecord] = tokens_from_record(record or {})
        self.streaming = False
        self.note = (record or {}).get("finish_note", "")  # e.g. "stopped", kept across restarts
        self._stream: MarkdownStream | None = None

    def signature(self) -> tuple:
        return (self.content, self.n_alternatives, self.active, len(self.tokens))

    def compose(self) -> ComposeResult:
        yield MessageHeader(self.header(), classes="message-header")
        yield ChatMarkdown(self.content, classes="message-body")
        if self.role == "assistant":
            yield TokenView(self.tokens, classes="message-tokens")
            yield Static(describe(None, -1), classes="token-alternatives", markup=False)

    # -- header ------------------------------------------------------------------
    def _link(self, label: str, action: str) -> tuple[str, str]:
        return (label, f"underline @click=message_action('{action}')")

    def header(self) -> Content:
        parts: list[tuple[str, str]] = [(ROLE_LABELS.get(self.role, self.role), "bold")]
        if self.n_alternatives > 1:
            parts += [("  ", ""), self._link("‹", "prev"),
                      (f" {self.active + 1}/{self.n_alternatives} ", ""), self._link("›", "next")]
        if self.streaming:
            parts.append(("  …", "italic"))
        elif self.note:
            parts.append((f"  ({self.note})", "italic"))
        parts.append(("   ", ""))
        actions = [("copy", "copy")]
        if "```" in self.content:
            actions.append(("copy code", "copy_code"))
        if self.role == "user":
            actions.append(("edit", "edit"))
        else:
            actions += [("regenerate", "regenerate"), ("continue", "continue")]
        for index, (label, action) in enumerate(actions):
            if index:
                parts.append((" · ", "dim"))
            parts.append(self._link(label, action))
        text = "".join(p[0] for p in parts)
        spans, offset = [], 0
        for piece, style in parts:
            if style:
                spans.append(Span(offset, offset + len(piece), style))
            offset += len(piece)
        return Content(text, spans)

    def refresh_header(self) -> None:
        if self.is_mounted:
            self.query_one(MessageHeader).update(self.header())

    # -- content -------------------------------------------------------------------
    async def set_message(self, content: str, alternatives: int, active: int, record: dict[str, Any]) -> None:
        self.content = content
        self.n_alternatives = alternatives
        self.active = active
        self.tokens = tokens_from_record(record)
        self.note = record.get("finish_note", "")
        await self.query_one(ChatMarkdown).update(content)
        if self.role == "assistant":
            self.query_one(TokenView).set_tokens(self.tokens)
        self.refresh_header()

    def start_stream(self) -> None:
        self.streaming = True
        self.note = ""
        self._stream = Markdown.get_stream(self.query_one(ChatMarkdown))
        self.refresh_header()

    async def append(self, text: str, tokens: list[TokenRecord]) -> None:
        self.content += text
        self.tokens.extend(tokens)
        if self._stream is not None and text:
            await self._stream.write(text)
        if tokens and self.role == "assistant":
            self.query_one(TokenView).add_tokens(tokens)

    async def finish_stream(self, note: str = "") -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.streaming = False
        self.note = note
        self.refresh_header()

    def on_token_view_selected(self, event: TokenView.Selected) -> None:
        event.stop()
        view = event.token_view
        self.query_one(".token-alternatives", Static).update(describe(view.selected(), view.cursor))

    def alternatives_text(self) -> str:
        return str(self.query_one(".token-alternatives", Static).render())
