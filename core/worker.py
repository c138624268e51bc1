"""Running a session's event generator on a thread of its own.

For callers without a worker framework of their own (the TUI uses Textual's
thread workers instead): events go to a callback or a queue.Queue as they
come; ``cancel()`` stops the reply within one token.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

from .events import Event


class GenerationThread(threading.Thread):
    def __init__(self, start_stream: Callable[[threading.Event], Iterator[Event]],
                 sink: Callable[[Event], None] | queue.Queue):
        super().__init__(daemon=True, name="chord-generation")
        self.cancel_event = threading.Event()
        self._start_stream = start_stream
        self._emit = sink.put if isinstance(sink, queue.Queue) else sink

    def run(self) -> None:
        for ev in self._start_stream(self.cancel_event):
            self._emit(ev)

    def cancel(self) -> None:
        self.cancel_event.set()
