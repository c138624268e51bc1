"""Storage faults: the conversations database locked by another process,
damaged, or on a disk that fills up mid-reply. The app says so in one
line and stays up; every token shown is stored or reported as not stored;
nothing stored earlier is lost, and a message that could not be saved stays
in the input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fake_engine import FakeEngine, make_app, settle, wait_until

from chord_tui.storage import ConversationStore
from chord_tui.storage_errors import StorageError, open_store

TESTS = Path(__file__).parent
LONG_REPLY = " ".join(f"word{i:04d}-" + "x" * 210 for i in range(800))  # 176 KB: more than the disk has


class LockHolder:
    """Another process holding the database's write lock until ``release``."""

    def __init__(self, path: Path):
        script = ("import sqlite3, sys\n"
                  f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
                  "db.execute('BEGIN IMMEDIATE')\n"
                  "print('locked', flush=True)\n"
                  "sys.stdin.readline()\n"
                  "db.execute('ROLLBACK')\n")
        self.proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        self.proc.communicate("\n", timeout=60)


def _notes(app) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_locked_database_keeps_the_message_in_the_input_and_the_app_up(tmp_path):
    store = ConversationStore(tmp_path / "c.db", busy_timeout_ms=50)
    app = make_app(tmp_path, FakeEngine(), store=store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        lock = LockHolder(tmp_path / "c.db")
        try:
            app.chat.chat_input.focus()
            app.chat.chat_input.text = "Hello there"
            await pilot.press("enter")
            await settle(app, pilot)
            assert app.chat.chat_input.text == "Hello there"
            assert any(n.startswith("Not sent: ") and "is locked by another process" in n for n in _notes(app))
        finally:
            lock.release()
        await pilot.press("enter")  # the same text, now that the lock is gone
        await settle(app, pilot)
        assert app.chat.chat_input.text == ""
    stored = ConversationStore(tmp_path / "c.db").load(app.chat.state.conversation_id).messages
    assert [(m.role, m.content) for m in stored][:1] == [("user", "Hello there")]
    assert stored[1].content


async def test_lock_taken_mid_reply_reports_what_is_not_stored_and_keeps_it_shown(tmp_path):
    engine = FakeEngine(replies=["one two three four five six"], gated=True)
    store = ConversationStore(tmp_path / "c.db", busy_timeout_ms=50)
    app = make_app(tmp_path, engine, store=store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.chat.chat_input.text = "count"
        app.chat.chat_input.focus()
        await pilot.press("enter")
        engine.release(3)
        await wait_until(pilot, lambda: app.chat.state.generation is not None
                         and len(app.chat.state.generation.tokens) == 3)
        lock = LockHolder(tmp_path / "c.db")
        try:
            engine.release(10)
            await settle(app, pilot)
            reply = app.chat.state.messages[-1]
            assert reply.content == "one two three four five six"  # all of it still shown
            assert "not stored: the last 14 characters are only on screen" in reply.record["finish_note"]
            assert any(n.startswith("Reply not saved: ") and "locked" in n for n in _notes(app))
        finally:
            lock.release()
    stored = ConversationStore(tmp_path / "c.db").load(app.chat.state.conversation_id).messages
    assert stored[0].content == "count"
    assert stored[1].content == "one two three"  # what was stored before the lock: a prefix, nothing lost


def test_damaged_database_is_kept_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "conversations.db"
    garbage = b"this is not an SQLite database, but someone's conversations might be in it\n" * 100
    path.write_bytes(garbage)
    store = open_store(path)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("conversations.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes() == garbage
    assert store.notice == (f"{path} is damaged (file is not a database): it is kept as {kept[0].name}, "
                            f"and a new conversations database was started")
    assert store.list_conversations() == []


async def test_app_on_a_damaged_database_says_so_and_works(tmp_path):
    path = tmp_path / "conversations.db"
    path.write_bytes(b"\x00garbage" * 1000)
    app = make_app(tmp_path, FakeEngine(), store=open_store(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert any(n.startswith("Conversations: ") and "is damaged" in n for n in _notes(app))
        app.chat.chat_input.text = "hi"
        app.chat.chat_input.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert [m.role for m in app.chat.state.messages] == ["user", "assistant"]


def test_locked_database_at_start_is_a_one_line_storage_error(tmp_path):
    path = tmp_path / "c.db"
    ConversationStore(path).close()
    with open(path, "r+b") as f:  # an old rollback-journal database, so opening it needs the lock
        f.seek(18)
        f.write(b"\x01\x01")
    lock = LockHolder(path)
    try:
        with pytest.raises(StorageError, match=r"is locked by another process \(database is locked\); close"):
            ConversationStore(path, busy_timeout_ms=50)
    finally:
        lock.release()


_DISK_FILLS_UP = textwrap.dedent("""
    import asyncio, json, resource, signal, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from fake_engine import FakeEngine, make_app, settle
    from chord_tui.storage import ConversationStore

    db, reply = Path(sys.argv[2]), sys.stdin.read()
    store = ConversationStore(db)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing us
    limit = 96 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    app = make_app(db.parent, FakeEngine(replies=[reply]), store=store)

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            app.chat.chat_input.text = "write a lot"
            app.chat.chat_input.focus()
            await pilot.press("enter")
            await settle(app, pilot, rounds=2000)
            reply = app.chat.state.messages[-1]
            print(json.dumps({"shown": reply.content, "note": reply.record.get("finish_note", ""),
                              "conversation": app.chat.state.conversation_id,
                              "notes": [f"{n.title}: {n.message}" for n in app._notifications]}))

    asyncio.run(main())
""")


def test_disk_filling_up_mid_reply_keeps_earlier_data_and_reports_the_rest(tmp_path):
    db = tmp_path / "c.db"
    with ConversationStore(db) as store:  # an earlier conversation, which must survive
        earlier = store.create("earlier")
        store.add_message(earlier, "user", "remember this")
        store.add_message(earlier, "assistant", "I will")
    proc = subprocess.run([sys.executable, "-c", _DISK_FILLS_UP, str(TESTS), str(db)], input=LONG_REPLY,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["shown"] == LONG_REPLY
    assert any(n.startswith("Reply not saved: ") for n in result["notes"]), result["notes"]
    with ConversationStore(db) as store:
        assert [(m.role, m.content) for m in store.load(earlier).messages] == [("user", "remember this"),
                                                                                ("assistant", "I will")]
        stored = store.load(result["conversation"]).messages
    assert stored[0].content == "write a lot"
    kept = stored[1].content
    assert LONG_REPLY.startswith(kept) and len(kept) < len(LONG_REPLY)
    assert result["note"].endswith(f"not stored: the last {len(LONG_REPLY) - len(kept):,} characters are only "
                                   f"on screen")
