"""A generation on a worker thread, its events handed to the event loop.

``ChatSession.stream`` and friends are plain generators that compute between
two yields, so they must never run on the event loop. A ``Job`` iterates one
on a thread of the app's executor and passes each item to an asyncio queue
with ``call_soon_threadsafe``; the request handler awaits the queue. The
job's ``cancel`` event is the session's: a handler whose client went away
sets it, and the generator ends within one token, which frees the slot.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Executor
from typing import Any, AsyncIterator, Callable, Iterator

_END = object()


class Job:
    def __init__(self, work: Callable[[threading.Event], Iterator[Any]]):
        """``work(cancel)`` yields the items; an exception it raises reaches the reader."""
        self._work = work
        self.cancel = threading.Event()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self.finished = threading.Event()  # set once the worker has let go of everything
        self._on_end: Callable[[], None] | None = None

    def start(self, executor: Executor, on_end: Callable[[], None] | None = None) -> None:
        """Run on ``executor``; ``on_end`` is called on the event loop once the work has ended."""
        self._on_end = on_end
        executor.submit(self._run)

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop closed under us (shutdown): nobody is reading any more
            self.cancel.set()

    def _run(self) -> None:
        failure: BaseException | None = None
        try:
            for item in self._work(self.cancel):
                self._put(item)
        except BaseException as err:  # handed to the reader, who turns it into an error response
            failure = err
        finally:
            self.finished.set()
            # on_end before the last items: callbacks run in the order they were scheduled, so
            # a reader that sees the end (and answers its client) finds the turn handed back
            if self._on_end is not None:
                try:
                    self._loop.call_soon_threadsafe(self._on_end)
                except RuntimeError:  # the loop is gone: so is whatever waited for this
                    pass
            if failure is not None:
                self._put(failure)
            self._put(_END)

    async def next(self) -> Any:
        """The next item; raises what the work raised; StopAsyncIteration at the end."""
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            try:
                yield await self.next()
            except StopAsyncIteration:
                return
