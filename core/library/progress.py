"""The download progress bar the CLI draws on stderr (the TUI draws its own
from the same ``progress(downloaded, total)`` callback)."""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from ..model_facts import format_size


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def render_progress(downloaded: int, total: int | None, speed: float | None, width: int = 28) -> str:
    """One line: bar, percentage, sizes, speed and ETA (bar-less if the
    server did not say how big the file is)."""
    rate = f"{format_size(speed)}/s" if speed else "-- /s"
    if not total:
        return f"{format_size(downloaded)}  {rate}"
    frac = min(max(downloaded / total, 0.0), 1.0)
    filled = int(frac * width)
    bar = "#" * filled + "-" * (width - filled)
    eta = (total - downloaded) / speed if speed else None
    return (f"[{bar}] {frac * 100:5.1f}%  {format_size(downloaded)} / {format_size(total)}  "
            f"{rate}  ETA {format_duration(eta)}")


class StderrProgress:
    """A ``progress`` callback that redraws one line, at most every
    ``min_interval`` seconds. Speed counts only bytes fetched in this run,
    not the part resumed from an earlier one."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 min_interval: float = 0.1):
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.min_interval = min_interval
        self._start: tuple[float, int] | None = None
        self._last_draw = float("-inf")
        self._last_line = ""

    def speed(self, downloaded: int, now: float) -> float | None:
        if self._start is None:
            return None
        t0, n0 = self._start
        elapsed = now - t0
        return (downloaded - n0) / elapsed if elapsed > 0 and downloaded > n0 else None

    def __call__(self, downloaded: int, total: int | None) -> None:
        now = self.clock()
        if self._start is None:
            self._start = (now, downloaded)
        done = total is not None and downloaded >= total
        if now - self._last_draw < self.min_interval and not done:
            return
        self._last_draw = now
        line = render_progress(downloaded, total, self.speed(downloaded, now))
        pad = " " * max(0, len(self._last_line) - len(line))
        self.stream.write("\r" + line + pad)
        self.stream.flush()
        self._last_line = line

    def finish(self) -> None:
        if self._last_line:
            self.stream.write("\n")
            self.stream.flush()
            self._last_line = ""
