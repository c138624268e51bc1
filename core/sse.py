"""Server-sent events, read: the ``data`` of each event of a text/event-stream.

Per the HTML standard's parsing rules, only as far as chat streams need
them: an event ends at a blank line; its ``data:`` lines are joined with
newlines (one space after the colon is not part of the value); comments
(``:`` lines, e.g. keep-alive pings) and other fields are skipped; an event
cut off by the end of the stream is dropped, as a browser drops it.
"""

from __future__ import annotations

from typing import Iterable, Iterator


def server_sent_data(lines: Iterable[str]) -> Iterator[str]:
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
