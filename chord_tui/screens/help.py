"""Every key binding, grouped by where it works.

The App builds the sections from the widgets' own BINDINGS, so this list
cannot drift from what the keys really do.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

Section = tuple[str, list[tuple[str, str]]]  # title, (keys, description)


def format_keys(keys: str) -> str:
    names = []
    for key in keys.split(","):
        key = key.strip()
        key = {"left_square_bracket": "[", "right_square_bracket": "]"}.get(key, key)
        names.append("+".join(part.capitalize() if len(part) > 1 else part for part in key.split("+")))
    return " / ".join(names)


def sections_from(groups: list[tuple[str, list[Binding]]], extra: dict[str, list[tuple[str, str]]]) -> list[Section]:
    out: list[Section] = []
    for title, bindings in groups:
        rows: list[tuple[str, str]] = []
        seen: set[str] = set()
        for binding in bindings:
            text = binding.tooltip or binding.description
            if text and binding.key not in seen:
                seen.add(binding.key)
                rows.append((format_keys(binding.key), text))
        rows += extra.get(title, [])
        out.append((title, rows))
    return out


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, sections: list[Section]) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-full", id="help-dialog"):
            yield Label("Keys — every action is also in the command palette (Ctrl+P)", id="help-title")
            with VerticalScroll(id="help-scroll"):
                for title, rows in self.sections:
                    yield Label(title, classes="help-section")
                    width = max((len(keys) for keys, _ in rows), default=0) + 2
                    text = "\n".join(f"{keys:<{width}}{description}" for keys, description in rows)
                    yield Static(text, classes="help-rows", markup=False)
            yield Label("Esc closes", classes="dialog-hint")

    def all_text(self) -> str:
        return "\n".join(f"{title}\n" + "\n".join(f"{k} {d}" for k, d in rows) for title, rows in self.sections)
