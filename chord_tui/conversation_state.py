"""A conversation's live state: the open conversation and the reply in flight.

Plain Python over the ConversationStore, no widgets, so the rules (what the
engine is sent, how a finished reply is recorded, what regenerate or
continue keep) read in one place and can be tested without a terminal.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chord_core.events import Done, TokenEvent
from chord_tui.messages import EventBuffer
from chord_tui.storage_errors import StorageError
from chord_tui.token_records import TokenRecord, token_record, tokens_from_record

NEW_TITLE = "New chat"
FINISH_NOTES = {"cancelled": "stopped", "length": "max tokens reached", "stop_string": "stop string"}


def title_from(text: str, limit: int = 40) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), NEW_TITLE)
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass
class Generation:
    """One reply being generated into assistant message ``message_id``."""

    id: int
    mode: str  # "send" | "regenerate" | "continue"
    message_id: int
    messages: list[dict[str, str]]
    base_text: str = ""  # continue: the text already there
    base_tokens: list[TokenRecord] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    buffer: EventBuffer = field(default_factory=EventBuffer)
    text: str = ""
    tokens: list[TokenRecord] = field(default_factory=list)
    finished: bool = False
    storage_error: str = ""  # why the reply could not be stored (locked, disk full): it goes on, on screen only
    storage_error_shown: bool = False


class ConversationState:
    """The conversation open in the chat screen (a ``storage.Conversation``,
    reloaded after each change) and the ``Generation`` streaming into it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.conversation_id: int | None = None
        self.conversation: Any = None  # chord_tui.storage.Conversation
        self.default_system_prompt = ""  # from the config, for each new conversation
        self.pending_system_prompt = ""  # typed before the conversation exists
        self.generation: Generation | None = None
        self._next_generation = 0

    # -- conversations -------------------------------------------------------------
    @property
    def messages(self) -> list:
        return list(self.conversation.messages) if self.conversation else []

    @property
    def title(self) -> str:
        return self.conversation.title if self.conversation else NEW_TITLE

    @property
    def system_prompt(self) -> str:
        return self.conversation.system_prompt if self.conversation else self.pending_system_prompt

    def reload(self) -> None:
        self.conversation = self.store.load(self.conversation_id) if self.conversation_id is not None else None

    def open(self, conversation_id: int | None) -> None:
        self.conversation_id = conversation_id
        if conversation_id is None:
            self.pending_system_prompt = self.default_system_prompt
        self.reload()

    def ensure_conversation(self, first_text: str, model: str = "") -> int:
        if self.conversation_id is None:
            self.conversation_id = self.store.create(title_from(first_text), self.pending_system_prompt, model)
            self.pending_system_prompt = ""
        return self.conversation_id

    def set_system_prompt(self, text: str) -> None:
        if self.conversation_id is None:
            self.pending_system_prompt = text
        else:
            self.store.set_system_prompt(self.conversation_id, text)
            self.reload()

    def find(self, message_id: int):
        for index, message in enumerate(self.messages):
            if message.id == message_id:
                return index, message
        return -1, None

    def engine_messages(self, upto: int | None = None, draft: str = "") -> list[dict[str, str]]:
        """The conversation as the engine takes it, messages[:upto], system first;
        with ``draft``, the request that sending it would make (F3 shows that).

        A reply that came out empty (stopped before its first token, or an
        engine error) is not shown to the model; the user turns on either
        side of it are joined, since chat templates expect the roles to
        alternate."""
        out = [{"role": "system", "content": self.system_prompt}] if self.system_prompt.strip() else []
        kept = [(m.role, m.content) for m in self.messages[:upto]] + ([("user", draft)] if draft else [])
        for i, (role, content) in enumerate(kept):
            if role == "assistant" and not content.strip() and i < len(kept) - 1:
                continue
            if out and role == "user" and out[-1]["role"] == "user":
                out[-1] = {"role": "user", "content": out[-1]["content"] + "\n\n" + content}
                continue
            out.append({"role": role, "content": content})
        return out

    # -- starting replies --------------------------------------------------------------
    def _new_generation(self, mode: str, message_id: int, messages: list[dict[str, str]], **kw: Any) -> Generation:
        self._next_generation += 1
        self.generation = Generation(self._next_generation, mode, message_id, messages, **kw)
        return self.generation

    def send(self, text: str, model: str = "") -> Generation:
        conv = self.ensure_conversation(text, model)
        self.store.add_message(conv, "user", text)
        reply = self.store.add_message(conv, "assistant", "")
        self.reload()
        return self._new_generation("send", reply, self.engine_messages(-1))

    def regenerate(self, message_id: int) -> Generation:
        index, message = self.find(message_id)
        if message is None or message.role != "assistant" or index != len(self.messages) - 1:
            raise ValueError("only the last reply can be regenerated")
        self.store.add_alternative(message_id, "", {})
        self.reload()
        return self._new_generation("regenerate", message_id, self.engine_messages(index))

    def continue_reply(self, message_id: int) -> Generation:
        index, message = self.find(message_id)
        if message is None or message.role != "assistant" or index != len(self.messages) - 1:
            raise ValueError("only the last reply can be continued")
        return self._new_generation("continue", message_id, self.engine_messages(), base_text=message.content,
                                    base_tokens=tokens_from_record(message.record))

    def edit_and_resend(self, message_id: int, text: str) -> Generation:
        index, message = self.find(message_id)
        if message is None or message.role != "user":
            raise ValueError("only your own messages can be edited")
        self.store.update_message(message_id, text)
        self.store.truncate_after(self.conversation_id, message_id)
        reply = self.store.add_message(self.conversation_id, "assistant", "")
        self.reload()
        return self._new_generation("send", reply, self.engine_messages(index + 1))

    def flip(self, message_id: int, delta: int) -> bool:
        _, message = self.find(message_id)
        if message is None or len(message.alternatives) < 2:
            return False
        target = (message.active + delta) % len(message.alternatives)
        self.store.set_active_alternative(message_id, target)
        self.reload()
        return True

    # -- a reply streaming in -------------------------------------------------------------
    def add_tokens(self, gen: Generation, events: list[TokenEvent]) -> tuple[str, list[TokenRecord]]:
        text = "".join(e.text for e in events)
        # id -1 is the engine's closing flush of held-back text, not a token
        records = [token_record(e) for e in events if e.id >= 0]
        gen.text += text
        gen.tokens.extend(records)
        if text and not gen.storage_error:
            try:
                self.store.append_to_message(gen.message_id, text)
            except StorageError as err:  # later chunks would leave a gap: the finished reply is tried whole
                gen.storage_error = str(err)
        return text, records

    def abandon(self, gen: Generation) -> None:
        """The app is closing mid-reply: record what has arrived as a stopped
        reply now, without waiting for the engine to notice the cancel."""
        done, tokens = None, []
        for event in gen.buffer.drain():
            if isinstance(event, TokenEvent):
                tokens.append(event)
            elif isinstance(event, Done):
                done = event
        if tokens:
            self.add_tokens(gen, tokens)
        self.finish(gen, done, reason="cancelled")

    def finish(self, gen: Generation, done: Done | None, error: str = "", reason: str | None = None) -> str:
        """Record the finished reply; returns the note shown on the message.
        Without ``done`` the reply ended in ``error`` or, if given, ``reason``."""
        gen.finished = True
        new_text = gen.text
        if done is not None and done.text and done.text != gen.text:
            # The engine's own text is authoritative (the stream may hold back
            # a partial UTF-8 sequence), unless it already includes the base.
            new_text = done.text[len(gen.base_text):] if gen.base_text and done.text.startswith(gen.base_text) else done.text
        record: dict[str, Any] = dict(done.record) if done is not None else {}
        record["tokens"] = [list(t[:2]) + [[list(a) for a in t[2]]] for t in gen.base_tokens + gen.tokens]
        if done is not None:
            record["finish_reason"] = done.reason
            record["stats"] = asdict(done.stats)
            note = FINISH_NOTES.get(done.reason, "")
        elif reason is not None:
            record["finish_reason"] = reason
            note = FINISH_NOTES.get(reason, "")
        else:
            note = f"error: {error}"
        if error:
            record["error"] = error
        record["finish_note"] = note
        full = gen.base_text + new_text
        try:
            self.store.finish_message(gen.message_id, full, record)
            gen.storage_error = ""  # stored whole after all
        except StorageError as err:
            gen.storage_error = str(err)
        if self.generation is gen:
            self.generation = None
        self.reload()
        return self._keep_unstored(gen.message_id, full, note) if gen.storage_error else note

    def _keep_unstored(self, message_id: int, full: str, note: str) -> str:
        """The reply is on screen but only partly stored: keep showing all of it,
        and say in its note how much the database lacks."""
        _, message = self.find(message_id)
        stored = message.content if message is not None else ""
        missing = len(full) - len(stored) if full.startswith(stored) else len(full)
        note = (f"{note}; " if note else "") + f"not stored: the last {missing:,} characters are only on screen"
        if message is not None:
            message.content = full
            message.alternatives[message.active] = full
            message.record = {**message.record, "finish_note": note}
        return note

    # -- export -----------------------------------------------------------------------------
    def export(self, directory: Path) -> tuple[Path, Path]:
        if self.conversation_id is None:
            raise ValueError("nothing to export yet")
        directory.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.title).strip("-").lower()[:40] or "chat"
        stem = directory / f"{slug}-{self.conversation_id}"
        md_path, json_path = stem.with_suffix(".md"), stem.with_suffix(".json")
        md_path.write_text(self.store.export_markdown(self.conversation_id), encoding="utf-8")
        json_path.write_text(json.dumps(self.store.export_json(self.conversation_id), indent=2, ensure_ascii=False),
                             encoding="utf-8")
        return md_path, json_path
