"""Messages that worker threads send to the UI, and the buffer that batches replies.

Workers never touch widgets: they ``post_message`` one of these dataclasses
and the UI thread reacts. A reply's events go through an ``EventBuffer`` so
that however fast the engine produces tokens, at most one ``ReplyEvents``
message is waiting in the UI's queue; its handler drains everything that
arrived meanwhile. That keeps the UI from falling behind the engine without
timers, and the engine never waits for the UI (no ``call_from_thread``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from textual.message import Message

from chord_core.events import Event
from chord_tui.engine import LoadedModelInfo, ModelEntry


class EventBuffer:
    """Thread-safe FIFO of engine events with a "signal once" flag."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Event] = []
        self._signalled = False

    def put(self, event: Event) -> bool:
        """Queue ``event``; True if the consumer must be woken (nothing was pending)."""
        with self._lock:
            self._items.append(event)
            if self._signalled:
                return False
            self._signalled = True
            return True

    def holds(self, *types: type) -> bool:
        """Whether an event of one of ``types`` is waiting (e.g. the final Done)."""
        with self._lock:
            return any(isinstance(e, types) for e in self._items)

    def drain(self) -> list[Event]:
        """Everything queued so far, in order; the next ``put`` signals again."""
        with self._lock:
            items, self._items = self._items, []
            self._signalled = False
            return items


@dataclass
class ReplyEvents(Message):
    """Events for generation ``generation_id`` are waiting in its buffer."""

    generation_id: int


@dataclass
class ModelLoadProgress(Message):
    name: str
    fraction: float  # 0..1, or -1 when unknown
    label: str

    def can_replace(self, message: Message) -> bool:
        # Only the newest progress matters; drop stale ones still queued.
        return isinstance(message, ModelLoadProgress)


@dataclass
class ModelLoaded(Message):
    name: str
    info: LoadedModelInfo


@dataclass
class ModelLoadFailed(Message):
    name: str
    reason: str
    fallback_template: str | None = None  # the model's template is over its limits: offer this shipped one


@dataclass
class DefaultModelFound(Message):
    """The library's default model, looked up off the UI thread (the first
    lookup may assemble a packaged demo model: hundreds of MB)."""

    name: str | None
    error: str | None = None
    exclude: str | None = None  # the model that just failed to load: not to be retried


@dataclass
class PullProgress(Message):
    source: str
    done_bytes: int
    total_bytes: int | None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PullProgress)


@dataclass
class PullFinished(Message):
    source: str
    entry: ModelEntry


@dataclass
class PullFailed(Message):
    source: str
    reason: str


@dataclass
class SettingChanged(Message):
    """A sampler control in the side panel changed (posted on the UI thread)."""

    key: str
    value: Any


@dataclass
class ContextSizeChosen(Message):
    """The side panel's context size changed (None: the model's default)."""

    n_ctx: int | None


@dataclass
class SpeculationChanged(Message):
    """The side panel's prompt-lookup switch or draft model changed (draft None: none)."""

    lookup: bool
    draft: str | None


@dataclass
class SystemPromptChanged(Message):
    text: str


@dataclass
class ConversationChosen(Message):
    conversation_id: int


@dataclass
class ConversationAction(Message):
    """The conversation list asks for ``action`` ("rename" | "delete") on an id."""

    action: str
    conversation_id: int


@dataclass
class MessageAction(Message):
    """A message asks for ``action`` (copy, edit, regenerate, continue, prev, next)."""

    action: str
    message_id: int
