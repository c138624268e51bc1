"""A reply as a program wants it: an iterator of text pieces, then the result.

``ChatSession.chat`` and ``ChatSession.completion`` return a ``Reply``. It
wraps the session's event stream (events.py): iterating it yields the text
of each token as it is chosen (pieces may be "" while a multi-byte
character or a possible stop string is held back), notices are kept in
``notices``, an engine error is raised as ``ChordError``, and the final
``Done`` event (token ids, timings in ``stats``, the ``record`` the app
stores with a reply) becomes ``result``.
"""

from __future__ import annotations

import threading
from typing import Iterator

from .errors import ChordError
from .events import Done, ErrorEvent, Event, Notice, TokenEvent


class Reply:
    """Iterate for the text; ``result`` once it ends. Single use, like a generator."""

    def __init__(self, events: Iterator[Event], cancel: threading.Event | None = None):
        self._events = events
        self._cancel = cancel
        self._result: Done | None = None
        self.notices: list[str] = []  # e.g. "context full: the 2 oldest messages were left out"

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        for event in self._events:
            if isinstance(event, TokenEvent):
                return event.text
            if isinstance(event, Notice):
                self.notices.append(event.message)
            elif isinstance(event, Done):
                self._result = event
            elif isinstance(event, ErrorEvent):
                raise ChordError(event.message)
        raise StopIteration

    @property
    def result(self) -> Done:
        """The finished reply: ``text``, ``token_ids``, ``reason`` ("stop",
        "length", "stop_string", "cancelled"), ``stats`` and ``record``.
        Read before the stream has ended, it generates the rest first."""
        for _ in self:
            pass
        if self._result is None:
            raise ChordError("the reply was closed before it finished, so it has no result")
        return self._result

    @property
    def text(self) -> str:
        """The whole reply's text (generates the rest first, like ``result``)."""
        return self.result.text

    def cancel(self) -> None:
        """Stop after the token being generated; the reply ends with reason "cancelled".
        Safe to call from another thread."""
        if self._cancel is None:
            raise ChordError("this reply was made without a cancel event, so it cannot be cancelled")
        self._cancel.set()

    def close(self) -> None:
        """Abandon the reply now (the session is free for the next one)."""
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Reply:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
