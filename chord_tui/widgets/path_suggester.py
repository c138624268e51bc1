"""Filesystem completion for the models screen's "add a file" Input."""

from __future__ import annotations

import os
from pathlib import Path

from textual.suggester import Suggester


class PathSuggester(Suggester):
    """Suggest the first directory entry completing the typed path.

    Directories get a trailing separator so completion can continue into
    them; ``.gguf`` files sort before other files since they are what the
    field is for. Not cached: the directory may change between keystrokes.
    """

    def __init__(self, suffix: str = ".gguf") -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffix = suffix

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        directory, prefix = os.path.split(expanded)
        try:
            entries = sorted(os.scandir(directory or "."), key=lambda e: e.name)
        except OSError:
            return None
        matches = [e for e in entries if e.name.startswith(prefix) and e.name != prefix and not e.name.startswith(".")
                   or (e.name == prefix and e.is_dir())]

        def rank(entry: os.DirEntry) -> int:
            if entry.is_dir():
                return 0 if entry.name != prefix else -1
            return 1 if entry.name.endswith(self.suffix) else 2

        if not matches:
            return None
        best = min(matches, key=rank)
        completed = best.name + (os.sep if best.is_dir() else "")
        # Keep what the user typed (e.g. "~/") and complete only the last part.
        head = value[: len(value) - len(prefix)]
        suggestion = head + completed
        return suggestion if suggestion != value else None


def is_existing_file(value: str) -> bool:
    return Path(os.path.expanduser(value)).is_file()
