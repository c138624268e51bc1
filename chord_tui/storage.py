"""Conversations in SQLite, written while the reply streams.

Every call commits. The database runs in WAL mode with
``synchronous=NORMAL``, so a commit is an append to the WAL file with no
fsync; once it returns the data is in the OS page cache, where it survives
the process being killed (only a power cut can lose the last commits).
Batching appends on a timer would add a flush thread and a window of lost
tokens for little gain; tests/test_kill.py checks that a SIGKILL mid-reply
loses nothing already appended.

A streamed token is one small INSERT into ``stream_chunks`` rather than
``content = content || ?``: rewriting the growing text made each append cost
O(length) (0.4 ms at 30 KB, with WAL growth forcing frequent fsyncing
checkpoints), while the insert stays at ~15 us. Chunks are folded into the
text when the message is finished, edited, regenerated, or the store is next
opened (after a crash); ``load`` folds them in on the fly meanwhile.

A message keeps every version of its text (regenerate adds one) in the
``alternatives`` table; ``messages.active`` says which one is shown, and
streamed chunks always belong to that one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from chord_tui.storage_errors import StorageError, StoreConnection

__all__ = ["ConversationStore", "StorageError"]

SCHEMA_VERSION = 1

_SCHEMA_V1 = """
CREATE TABLE conversations (
    id            INTEGER PRIMARY KEY,
    title         TEXT    NOT NULL,
    system_prompt TEXT    NOT NULL DEFAULT '',
    model         TEXT    NOT NULL DEFAULT '',
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL
);
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT    NOT NULL,
    active          INTEGER NOT NULL DEFAULT 0,
    created_at      REAL    NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
CREATE TABLE alternatives (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    content    TEXT    NOT NULL DEFAULT '',
    record     TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (message_id, idx)
);
CREATE TABLE stream_chunks (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    text       TEXT    NOT NULL
);
"""

# Each entry upgrades the schema from version N-1 to N; add one per change.
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1}


@dataclass
class ConversationSummary:
    id: int
    title: str
    updated_at: float  # seconds since the epoch


@dataclass
class StoredMessage:
    id: int
    role: str
    content: str  # the active alternative's text
    alternatives: list[str]  # every version, including the active one
    active: int  # index into alternatives
    record: dict[str, Any] = field(default_factory=dict)  # of the active alternative


@dataclass
class Conversation:
    id: int
    title: str
    system_prompt: str
    model: str
    messages: list[StoredMessage]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ConversationStore:
    """One SQLite connection shared by the UI and worker threads under a lock."""

    def __init__(self, path: str | Path | None = None, busy_timeout_ms: int = 5000) -> None:
        if path is None:
            from chord_core.locations import conversations_db_path

            path = conversations_db_path()
        self.path = Path(path)
        self.notice: str | None = None  # what opening it did that the user should know (open_store)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._last_time = 0.0
        # isolation_level=None: no implicit transactions; _tx() opens them.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   factory=StoreConnection)
        self._db.store_path = self.path
        self._db.row_factory = sqlite3.Row
        # A checkpoint fsyncs (~15-25 ms); at the default 1000 pages one would
        # land mid-reply every ~1000 tokens. finish_message checkpoints
        # instead, between replies; the 8000-page limit only bounds a runaway WAL.
        pragmas = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", f"busy_timeout={busy_timeout_ms}",
                   "wal_autocheckpoint=8000")
        try:
            for pragma in pragmas:
                self._db.execute(f"PRAGMA {pragma}")
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    # -- plumbing -------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back itself (disk full)
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} has schema version {version}; this chord-chat knows up to {SCHEMA_VERSION}"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={target}")
            # Replies that were streaming when the last process died.
            for (msg_id,) in db.execute("SELECT DISTINCT message_id FROM stream_chunks").fetchall():
                self._fold_chunks(db, msg_id)

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ConversationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> float:
        # Strictly increasing, so "newest first" holds even when two changes
        # fall in one tick of a coarse clock (15 ms on Windows).
        self._last_time = max(time.time(), self._last_time + 1e-6)
        return self._last_time

    def _touch(self, db: sqlite3.Connection, conv_id: int) -> None:
        db.execute("UPDATE conversations SET updated_at=? WHERE id=?", (self._now(), conv_id))

    def _fold_chunks(self, db: sqlite3.Connection, msg_id: int) -> None:
        """Move a message's streamed chunks onto the end of its active text."""
        chunks = db.execute(
            "SELECT text FROM stream_chunks WHERE message_id=? ORDER BY id", (msg_id,)
        ).fetchall()
        if not chunks:
            return
        db.execute(
            "UPDATE alternatives SET content = content || ? WHERE message_id=?"
            " AND idx = (SELECT active FROM messages WHERE id=?)",
            ("".join(c[0] for c in chunks), msg_id, msg_id),
        )
        db.execute("DELETE FROM stream_chunks WHERE message_id=?", (msg_id,))

    def _conversation_of(self, db: sqlite3.Connection, msg_id: int) -> int:
        row = db.execute("SELECT conversation_id FROM messages WHERE id=?", (msg_id,)).fetchone()
        if row is None:
            raise StorageError(f"no message {msg_id}")
        return row[0]

    # -- conversations --------------------------------------------------------
    def list_conversations(self, search: str = "") -> list[ConversationSummary]:
        """Newest first; ``search`` matches the title or any message text
        (a reply still streaming is matched once finished)."""
        sql = "SELECT id, title, updated_at FROM conversations"
        args: tuple[Any, ...] = ()
        if search:
            pattern = f"%{_escape_like(search)}%"
            sql += """ WHERE title LIKE ? ESCAPE '\\' OR EXISTS (
                SELECT 1 FROM messages m JOIN alternatives a ON a.message_id = m.id
                WHERE m.conversation_id = conversations.id AND a.content LIKE ? ESCAPE '\\')"""
            args = (pattern, pattern)
        sql += " ORDER BY updated_at DESC, id DESC"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [ConversationSummary(r["id"], r["title"], r["updated_at"]) for r in rows]

    def create(self, title: str, system_prompt: str = "", model: str = "") -> int:
        now = self._now()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO conversations (title, system_prompt, model, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (title, system_prompt, model, now, now),
            )
            return int(cur.lastrowid)

    def _set_column(self, conv_id: int, column: str, value: str) -> None:
        with self._tx() as db:
            cur = db.execute(f"UPDATE conversations SET {column}=? WHERE id=?", (value, conv_id))
            if cur.rowcount == 0:
                raise StorageError(f"no conversation {conv_id}")
            self._touch(db, conv_id)

    def rename(self, conv_id: int, title: str) -> None:
        self._set_column(conv_id, "title", title)

    def set_system_prompt(self, conv_id: int, text: str) -> None:
        self._set_column(conv_id, "system_prompt", text)

    def set_model(self, conv_id: int, name: str) -> None:
        self._set_column(conv_id, "model", name)

    def delete(self, conv_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM conversations WHERE id=?", (conv_id,))

    def load(self, conv_id: int) -> Conversation:
        with self._lock:
            conv = self._db.execute("SELECT * FROM conversations WHERE id=?", (conv_id,)).fetchone()
            if conv is None:
                raise StorageError(f"no conversation {conv_id}")
            rows = self._db.execute(
                "SELECT m.id, m.role, m.active, a.idx, a.content, a.record FROM messages m"
                " JOIN alternatives a ON a.message_id = m.id"
                " WHERE m.conversation_id=? ORDER BY m.id, a.idx",
                (conv_id,),
            ).fetchall()
            streamed: dict[int, list[str]] = {}
            for c in self._db.execute(
                "SELECT c.message_id, c.text FROM stream_chunks c JOIN messages m ON m.id = c.message_id"
                " WHERE m.conversation_id=? ORDER BY c.id",
                (conv_id,),
            ):
                streamed.setdefault(c[0], []).append(c[1])
        messages: list[StoredMessage] = []
        for r in rows:
            if not messages or messages[-1].id != r["id"]:
                messages.append(StoredMessage(r["id"], r["role"], "", [], r["active"], {}))
            msg = messages[-1]
            content = r["content"]
            if r["idx"] == msg.active:
                content += "".join(streamed.get(msg.id, ()))
                msg.content = content
                msg.record = json.loads(r["record"])
            msg.alternatives.append(content)
        return Conversation(conv["id"], conv["title"], conv["system_prompt"], conv["model"], messages)

    # -- messages -------------------------------------------------------------
    def add_message(self, conv_id: int, role: str, content: str, record: dict | None = None) -> int:
        with self._tx() as db:
            try:
                cur = db.execute(
                    "INSERT INTO messages (conversation_id, role, active, created_at) VALUES (?, ?, 0, ?)",
                    (conv_id, role, self._now()),
                )
            except sqlite3.IntegrityError:
                raise StorageError(f"no conversation {conv_id}") from None
            msg_id = int(cur.lastrowid)
            db.execute(
                "INSERT INTO alternatives (message_id, idx, content, record) VALUES (?, 0, ?, ?)",
                (msg_id, content, json.dumps(record or {})),
            )
            self._touch(db, conv_id)
            return msg_id

    def append_to_message(self, msg_id: int, text: str) -> None:
        """Called once per streamed token: one INSERT, committed at once."""
        if not text:
            return
        with self._lock:
            try:
                self._db.execute("INSERT INTO stream_chunks (message_id, text) VALUES (?, ?)", (msg_id, text))
            except sqlite3.IntegrityError:
                raise StorageError(f"no message {msg_id}") from None

    def _write_active(self, msg_id: int, content: str, record: dict | None) -> None:
        with self._tx() as db:
            conv_id = self._conversation_of(db, msg_id)
            db.execute("DELETE FROM stream_chunks WHERE message_id=?", (msg_id,))
            if record is None:
                sql, args = "content=?", (content,)
            else:
                sql, args = "content=?, record=?", (content, json.dumps(record))
            db.execute(
                f"UPDATE alternatives SET {sql} WHERE message_id=?"
                " AND idx = (SELECT active FROM messages WHERE id=?)",
                (*args, msg_id, msg_id),
            )
            self._touch(db, conv_id)

    def finish_message(self, msg_id: int, content: str, record: dict | None) -> None:
        """The reply is complete: store its final text and its record."""
        self._write_active(msg_id, content, record)
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def update_message(self, msg_id: int, content: str) -> None:
        """The user edited the shown text; the record stays."""
        self._write_active(msg_id, content, None)

    def add_alternative(self, msg_id: int, content: str = "", record: dict | None = None) -> int:
        """Regenerate: keep the current text as an alternative and make a new
        one active; returns its index."""
        with self._tx() as db:
            conv_id = self._conversation_of(db, msg_id)
            self._fold_chunks(db, msg_id)
            index = db.execute(
                "SELECT COALESCE(MAX(idx), -1) + 1 FROM alternatives WHERE message_id=?", (msg_id,)
            ).fetchone()[0]
            db.execute(
                "INSERT INTO alternatives (message_id, idx, content, record) VALUES (?, ?, ?, ?)",
                (msg_id, index, content, json.dumps(record or {})),
            )
            db.execute("UPDATE messages SET active=? WHERE id=?", (index, msg_id))
            self._touch(db, conv_id)
            return int(index)

    def set_active_alternative(self, msg_id: int, index: int) -> None:
        with self._tx() as db:
            exists = db.execute(
                "SELECT 1 FROM alternatives WHERE message_id=? AND idx=?", (msg_id, index)
            ).fetchone()
            if exists is None:
                raise StorageError(f"message {msg_id} has no alternative {index}")
            self._fold_chunks(db, msg_id)
            db.execute("UPDATE messages SET active=? WHERE id=?", (index, msg_id))

    def truncate_after(self, conv_id: int, msg_id: int) -> None:
        """Delete every message of the conversation that comes after ``msg_id``."""
        with self._tx() as db:
            db.execute("DELETE FROM messages WHERE conversation_id=? AND id>?", (conv_id, msg_id))
            self._touch(db, conv_id)

    # -- export ---------------------------------------------------------------
    def export_json(self, conv_id: int) -> dict[str, Any]:
        with self._lock:  # one consistent view even while a worker streams
            conv = self.load(conv_id)
            times = self._db.execute(
                "SELECT created_at, updated_at FROM conversations WHERE id=?", (conv_id,)
            ).fetchone()
        messages = [
            {"role": m.role, "content": m.content, "alternatives": list(m.alternatives),
             "active": m.active, "record": m.record}
            for m in conv.messages
        ]
        return {
            "format": "chord-chat conversation", "version": 1,
            "id": conv.id, "title": conv.title, "system_prompt": conv.system_prompt, "model": conv.model,
            "created_at": times["created_at"], "updated_at": times["updated_at"],
            "messages": messages,
        }

    def export_markdown(self, conv_id: int) -> str:
        conv = self.load(conv_id)
        parts = [f"# {conv.title}"]
        if conv.model:
            parts.append(f"*Model: {conv.model}*")
        if conv.system_prompt:
            parts.append(f"## System\n\n{conv.system_prompt}")
        for m in conv.messages:
            heading = f"## {m.role.capitalize()}"
            if len(m.alternatives) > 1:
                heading += f" (version {m.active + 1} of {len(m.alternatives)})"
            if m.role == "assistant" and (model := reply_model(m.record)):
                heading += f" · {model}"
            parts.append(f"{heading}\n\n{m.content}")
        return "\n\n".join(parts) + "\n"


def reply_model(record: dict[str, Any]) -> str:
    """The model that wrote a reply, from its record: the library name, with
    the file's general.name beside it where that says something else."""
    model = record.get("model")
    if not isinstance(model, dict) or not model.get("name"):
        return ""
    name, general = str(model["name"]), str(model.get("general_name") or "")
    return f"{name} ({general})" if general and general != name else name
