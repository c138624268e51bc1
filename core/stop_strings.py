"""Holding back streamed text that might be the start of a stop string.

Text is released only once it can no longer be part of a stop string, so
a stop string split across tokens never leaks into the stream.
"""

from __future__ import annotations


class StopStringFilter:
    def __init__(self, stops: tuple[str, ...] | list[str]):
        self.stops = tuple(s for s in stops if s)
        self.pending = ""
        self.hit: str | None = None

    def push(self, text: str) -> str:
        """Add decoded text; return what is safe to show now. After a stop
        string is found, ``hit`` is set and the text from it on is dropped."""
        if self.hit is not None:
            return ""
        self.pending += text
        if not self.stops:
            out, self.pending = self.pending, ""
            return out
        first = None
        for s in self.stops:
            i = self.pending.find(s)
            if i >= 0 and (first is None or i < first[0]):
                first = (i, s)
        if first is not None:
            self.hit = first[1]
            out, self.pending = self.pending[:first[0]], ""
            return out
        keep = self._longest_stop_prefix_suffix()
        cut = len(self.pending) - keep
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.hit else self.pending), ""
        return out

    def _longest_stop_prefix_suffix(self) -> int:
        """Length of the longest tail of ``pending`` that begins some stop string."""
        best = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.pending)), best, -1):
                if self.pending.endswith(s[:n]):
                    best = n
                    break
        return best
