"""The App's downloads: owned by the App, not by a screen, so leaving the
models screen never stops one.

One download runs at a time in a thread worker (group "pull"); a second
pull waits in the queue and starts when the first ends. Only ``cancel()``
(a key on the models screen, an entry in the command palette) or quitting
stops a download; the library keeps the partial file, so pulling the same
source again resumes it. The worker reports through PullProgress /
PullFinished / PullFailed messages to the App, which hands them to
``progress`` / ``finished`` / ``failed`` here; the status bar and the
models screen (when shown) draw ``status()``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import partial

from chord_core.model_facts import format_size
from chord_tui.messages import PullFailed, PullFinished, PullProgress


@dataclass
class Download:
    source: str
    cancel: threading.Event = field(default_factory=threading.Event)
    done_bytes: int = 0
    total_bytes: int | None = None

    @property
    def label(self) -> str:
        """The file's name, short enough for the status bar."""
        return self.source.rstrip("/").rsplit("/", 1)[-1] or self.source

    @property
    def fraction(self) -> float | None:
        return self.done_bytes / self.total_bytes if self.total_bytes else None


class Downloads:
    def __init__(self, app) -> None:
        self._app = app
        self.current: Download | None = None
        self.waiting: list[str] = []

    @property
    def active(self) -> bool:
        return self.current is not None

    def add(self, source: str) -> str:
        """Start ``source`` now or queue it; returns what the user is told."""
        if self.current is not None and source == self.current.source or source in self.waiting:
            return f"{source} is already being downloaded."
        if self.current is not None:
            self.waiting.append(source)
            return f"Queued {source}: it starts when {self.current.label} is done."
        self._start(source)
        return f"Downloading {source}"

    def cancel(self) -> str | None:
        """Stop the running download and drop the queue; what the user is
        told, or None when nothing was downloading."""
        if self.current is None:
            return None
        dropped, self.waiting = self.waiting, []
        self.current.cancel.set()
        more = f" and {len(dropped)} queued" if dropped else ""
        return f"Cancelling the download of {self.current.label}{more}; the part already downloaded is kept."

    def stop(self) -> None:
        """The app is closing: the thread ends within one read (the partial file stays for a resume)."""
        self.waiting = []
        if self.current is not None:
            self.current.cancel.set()

    def status(self) -> str:
        """One line for the status bar: "↓ model.gguf 42% +1 queued", or "" when idle."""
        d = self.current
        if d is None:
            return ""
        amount = f"{d.fraction:.0%}" if d.fraction is not None else format_size(d.done_bytes)
        queued = f" +{len(self.waiting)} queued" if self.waiting else ""
        return f"↓ {d.label} {amount}{queued}"

    # -- the worker and its messages --------------------------------------------------
    def _start(self, source: str) -> None:
        download = Download(source)
        self.current = download
        self._app.run_worker(partial(self._pull, download), thread=True, group="pull",
                             name=f"pull {source}", exit_on_error=False)

    def _pull(self, download: Download) -> None:
        """Runs in a thread worker."""
        app = self._app

        def progress(done: int, total: int | None) -> None:
            app.post_message(PullProgress(download.source, done, total))

        try:
            entry = app.engine.pull_model(download.source, progress, download.cancel)
        except Exception as err:
            app.post_message(PullFailed(download.source, str(err) or type(err).__name__))
        else:
            app.post_message(PullFinished(download.source, entry))

    def progress(self, message: PullProgress) -> None:
        if self.current is not None and self.current.source == message.source:
            self.current.done_bytes, self.current.total_bytes = message.done_bytes, message.total_bytes

    def finished(self, message: PullFinished) -> None:
        self._next(message.source)

    def failed(self, message: PullFailed) -> bool:
        """True when the download failed because it was cancelled."""
        cancelled = self.current is not None and self.current.source == message.source and self.current.cancel.is_set()
        self._next(message.source)
        return cancelled

    def _next(self, ended: str) -> None:
        if self.current is not None and self.current.source == ended:
            self.current = None
        if self.current is None and self.waiting:
            self._start(self.waiting.pop(0))
