"""What can go wrong with the conversations database, in words a user can act on.

Every SQLite failure but a constraint violation (which the store's methods
turn into their own messages) surfaces as a one-line ``StorageError``: the
file locked by another process, the disk full, the file damaged. The chat
screen shows it and keeps going; ``storage.open_store`` sets a damaged file
aside and starts a new one.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any


class StorageError(Exception):
    """The conversations database cannot be used (missing row, newer schema,
    locked by another process, damaged, the disk full): one line to show."""

    damaged = False  # the file is not a database, or its pages are corrupt


class DatabaseDamagedError(StorageError):
    damaged = True


# SQLite's primary result codes (an extended code's low byte)
_SQLITE_CORRUPT, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL, _SQLITE_NOTADB = 11, 5, 6, 13, 26


def storage_error(path: Path, err: sqlite3.Error) -> StorageError:
    """``err`` as a one-line StorageError that says what the user can do about it."""
    code = (getattr(err, "sqlite_errorcode", 0) or 0) & 0xFF
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StorageError(f"{path} is locked by another process ({err}); close the other chord-chat or "
                            f"program using it")
    if code == _SQLITE_FULL:
        return StorageError(f"{path}: the disk is full ({err})")
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return DatabaseDamagedError(f"{path} is damaged ({err})")
    return StorageError(f"{path}: {err}")


class StoreConnection(sqlite3.Connection):
    """Every SQLite failure but a constraint (which callers handle) becomes a StorageError."""

    store_path = Path("?")

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as err:
            raise storage_error(self.store_path, err) from None


def open_store(path: str | Path | None = None):
    """The conversations database. A damaged file is set aside, renamed, never
    deleted (what it held may still be recovered), a new one is started, and
    ``store.notice`` says so. A locked one raises ``StorageError``."""
    if path is None:
        from chord_core.locations import conversations_db_path

        path = conversations_db_path()
    from chord_tui.storage import ConversationStore

    path = Path(path)
    try:
        return ConversationStore(path)
    except StorageError as err:
        if not err.damaged:
            raise
        reason = str(err)
    kept = path.with_name(f"{path.stem}.damaged-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            Path(f"{path}{suffix}").rename(f"{kept}{suffix}")
    store = ConversationStore(path)
    store.notice = f"{reason}: it is kept as {kept.name}, and a new conversations database was started"
    return store
