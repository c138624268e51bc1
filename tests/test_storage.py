"""ConversationStore: what each method leaves in the database."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from chord_core import locations
from chord_tui.storage import SCHEMA_VERSION, ConversationStore, StorageError


@pytest.fixture
def store(tmp_path):
    with ConversationStore(tmp_path / "conv.db") as s:
        yield s


def raw_rows(path: Path, sql: str, args=()) -> list[tuple]:
    """Read the file with a separate connection, as a later process would."""
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def test_default_path_is_under_chord_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))
    with ConversationStore() as s:
        assert s.path == locations.conversations_db_path()
        assert s.path.is_relative_to(tmp_path / "home")
        s.create("here")
    assert raw_rows(locations.conversations_db_path(), "SELECT title FROM conversations") == [("here",)]


def test_database_is_wal_and_versioned(store):
    assert raw_rows(store.path, "PRAGMA journal_mode") == [("wal",)]
    assert raw_rows(store.path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert store.schema_version == SCHEMA_VERSION


def test_reopening_keeps_data_and_version(tmp_path):
    path = tmp_path / "c.db"
    with ConversationStore(path) as s:
        cid = s.create("kept")
        s.add_message(cid, "user", "hello")
    with ConversationStore(path) as s:
        assert s.load(cid).messages[0].content == "hello"
        assert s.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StorageError, match="schema version"):
        ConversationStore(path)


def test_create_and_load(store):
    cid = store.create("Title", system_prompt="Be brief.", model="smollm")
    assert raw_rows(store.path, "SELECT title, system_prompt, model FROM conversations WHERE id=?", (cid,)) == [
        ("Title", "Be brief.", "smollm")
    ]
    conv = store.load(cid)
    assert (conv.id, conv.title, conv.system_prompt, conv.model, conv.messages) == (
        cid, "Title", "Be brief.", "smollm", []
    )


def test_load_missing_conversation_raises(store):
    with pytest.raises(StorageError):
        store.load(999)


def test_rename_system_prompt_model(store):
    cid = store.create("old")
    store.rename(cid, "new")
    store.set_system_prompt(cid, "You are a pirate.")
    store.set_model(cid, "gemma")
    assert raw_rows(store.path, "SELECT title, system_prompt, model FROM conversations") == [
        ("new", "You are a pirate.", "gemma")
    ]
    with pytest.raises(StorageError):
        store.rename(cid + 1, "nobody")


def test_delete_removes_conversation_and_its_messages(store):
    keep = store.create("keep")
    store.add_message(keep, "user", "stay")
    gone = store.create("gone")
    mid = store.add_message(gone, "assistant", "bye")
    store.add_alternative(mid, "bye again")
    store.append_to_message(mid, " streaming")
    store.delete(gone)
    assert [c.id for c in store.list_conversations()] == [keep]
    assert raw_rows(store.path, "SELECT conversation_id FROM messages") == [(keep,)]
    assert raw_rows(store.path, "SELECT count(*) FROM alternatives") == [(1,)]
    assert raw_rows(store.path, "SELECT count(*) FROM stream_chunks") == [(0,)]


def test_list_is_newest_first_and_updates_move_to_top(store):
    a = store.create("a")
    b = store.create("b")
    c = store.create("c")
    assert [s.id for s in store.list_conversations()] == [c, b, a]
    store.add_message(a, "user", "bump")
    listed = store.list_conversations()
    assert [s.id for s in listed] == [a, c, b]
    assert listed[0].title == "a" and listed[0].updated_at >= listed[1].updated_at


def test_search_matches_title_and_content(store):
    by_title = store.create("Python tips")
    by_content = store.create("misc")
    store.add_message(by_content, "user", "how do I write python decorators?")
    by_old_alt = store.create("other")
    mid = store.add_message(by_old_alt, "assistant", "first try mentions PYTHON")
    store.add_alternative(mid, "second try does not")
    store.create("unrelated")
    found = {s.id for s in store.list_conversations("python")}
    assert found == {by_title, by_content, by_old_alt}
    assert store.list_conversations("nothing like this") == []


def test_search_treats_wildcards_literally(store):
    pct = store.create("100% done")
    store.create("1000 done")
    assert [s.id for s in store.list_conversations("0%")] == [pct]
    under = store.create("snake_case")
    store.create("snakeXcase")
    assert [s.id for s in store.list_conversations("e_c")] == [under]


def test_add_message_rows_and_record(store):
    cid = store.create("t")
    u = store.add_message(cid, "user", "hi")
    a = store.add_message(cid, "assistant", "hello", record={"model": "m", "seed": 7})
    assert raw_rows(store.path, "SELECT id, role, active FROM messages ORDER BY id") == [
        (u, "user", 0), (a, "assistant", 0)
    ]
    rec = raw_rows(store.path, "SELECT record FROM alternatives WHERE message_id=?", (a,))[0][0]
    assert json.loads(rec) == {"model": "m", "seed": 7}
    msgs = store.load(cid).messages
    assert [(m.role, m.content, m.alternatives, m.active) for m in msgs] == [
        ("user", "hi", ["hi"], 0), ("assistant", "hello", ["hello"], 0)
    ]
    assert msgs[0].record == {} and msgs[1].record == {"model": "m", "seed": 7}


def test_add_message_to_missing_conversation_raises(store):
    with pytest.raises(StorageError):
        store.add_message(12345, "user", "orphan")


def test_append_is_visible_to_another_connection_at_once(store):
    cid = store.create("t")
    mid = store.add_message(cid, "assistant", "")
    for piece in ["Hel", "lo", ", ", "world"]:
        store.append_to_message(mid, piece)
    # Each append is committed: a second connection (another process) sees them.
    chunks = raw_rows(store.path, "SELECT text FROM stream_chunks WHERE message_id=? ORDER BY id", (mid,))
    assert [c[0] for c in chunks] == ["Hel", "lo", ", ", "world"]
    assert store.load(cid).messages[0].content == "Hello, world"


def test_finish_replaces_streamed_text_and_folds_chunks(store):
    cid = store.create("t")
    mid = store.add_message(cid, "assistant", "")
    store.append_to_message(mid, "draft")
    store.finish_message(mid, "Final answer.", {"timings": {"decode_tok_s": 12.5}})
    assert raw_rows(store.path, "SELECT count(*) FROM stream_chunks") == [(0,)]
    assert raw_rows(store.path, "SELECT content FROM alternatives WHERE message_id=?", (mid,)) == [
        ("Final answer.",)
    ]
    msg = store.load(cid).messages[0]
    assert msg.content == "Final answer."
    assert msg.record == {"timings": {"decode_tok_s": 12.5}}


def test_reopening_folds_chunks_left_by_a_crash(tmp_path):
    path = tmp_path / "c.db"
    s = ConversationStore(path)
    cid = s.create("t")
    mid = s.add_message(cid, "assistant", "start:")
    s.append_to_message(mid, " a")
    s.append_to_message(mid, " b")
    s.close()  # no finish_message, as after a kill
    with ConversationStore(path) as again:
        assert raw_rows(path, "SELECT content FROM alternatives") == [("start: a b",)]
        assert raw_rows(path, "SELECT count(*) FROM stream_chunks") == [(0,)]
        assert again.load(cid).messages[0].content == "start: a b"


def test_update_message_keeps_record(store):
    cid = store.create("t")
    mid = store.add_message(cid, "user", "typo", record={"k": 1})
    store.update_message(mid, "fixed")
    msg = store.load(cid).messages[0]
    assert (msg.content, msg.alternatives, msg.record) == ("fixed", ["fixed"], {"k": 1})


def test_regenerate_keeps_old_reply_as_alternative(store):
    cid = store.create("t")
    store.add_message(cid, "user", "q")
    mid = store.add_message(cid, "assistant", "")
    store.append_to_message(mid, "first ")
    store.append_to_message(mid, "reply")
    store.finish_message(mid, "first reply", {"seed": 1})

    index = store.add_alternative(mid)
    assert index == 1
    store.append_to_message(mid, "second")
    msg = store.load(cid).messages[1]
    assert (msg.content, msg.alternatives, msg.active) == ("second", ["first reply", "second"], 1)
    store.finish_message(mid, "second reply", {"seed": 2})

    assert raw_rows(store.path, "SELECT idx, content FROM alternatives WHERE message_id=? ORDER BY idx", (mid,)) == [
        (0, "first reply"), (1, "second reply")
    ]
    assert raw_rows(store.path, "SELECT active FROM messages WHERE id=?", (mid,)) == [(1,)]
    assert store.load(cid).messages[1].record == {"seed": 2}

    store.set_active_alternative(mid, 0)
    msg = store.load(cid).messages[1]
    assert (msg.content, msg.active, msg.record) == ("first reply", 0, {"seed": 1})
    with pytest.raises(StorageError):
        store.set_active_alternative(mid, 5)


def test_regenerate_while_chunks_pending_keeps_them_with_the_old_reply(store):
    cid = store.create("t")
    mid = store.add_message(cid, "assistant", "")
    store.append_to_message(mid, "cut off")
    assert store.add_alternative(mid, "new", {"seed": 3}) == 1
    msg = store.load(cid).messages[0]
    assert msg.alternatives == ["cut off", "new"] and msg.record == {"seed": 3}


def test_truncate_after(store):
    cid = store.create("t")
    other = store.create("other")
    ids = [store.add_message(cid, role, f"m{i}") for i, role in enumerate(["user", "assistant"] * 3)]
    foreign = store.add_message(other, "user", "untouched")
    store.add_alternative(ids[3], "alt")
    store.truncate_after(cid, ids[1])
    assert [m.id for m in store.load(cid).messages] == ids[:2]
    assert raw_rows(store.path, "SELECT id FROM messages ORDER BY id") == [(ids[0],), (ids[1],), (foreign,)]
    assert raw_rows(store.path, "SELECT DISTINCT message_id FROM alternatives ORDER BY 1") == [
        (ids[0],), (ids[1],), (foreign,)
    ]


def test_export_json(store):
    cid = store.create("Chat", system_prompt="sys", model="m")
    store.add_message(cid, "user", "hi")
    mid = store.add_message(cid, "assistant", "one", record={"seed": 1})
    store.add_alternative(mid, "two", {"seed": 2})
    data = store.export_json(cid)
    json.dumps(data)  # must be serialisable as is
    assert (data["title"], data["system_prompt"], data["model"]) == ("Chat", "sys", "m")
    assert data["messages"] == [
        {"role": "user", "content": "hi", "alternatives": ["hi"], "active": 0, "record": {}},
        {"role": "assistant", "content": "two", "alternatives": ["one", "two"], "active": 1, "record": {"seed": 2}},
    ]


def test_export_markdown(store):
    cid = store.create("My chat", system_prompt="Be kind.", model="gemma")
    store.add_message(cid, "user", "Hello?")
    mid = store.add_message(cid, "assistant", "old")
    store.add_alternative(mid, "Hi there!")
    md = store.export_markdown(cid)
    assert md.startswith("# My chat\n")
    assert "gemma" in md
    assert "## System\n\nBe kind." in md
    assert md.index("## User\n\nHello?") < md.index("## Assistant (version 2 of 2)\n\nHi there!")
    assert "old" not in md


def test_the_markdown_export_names_the_model_of_each_reply(store):
    cid = store.create("Two models", model="smollm2-135m")
    store.add_message(cid, "user", "Hi")
    store.add_message(cid, "assistant", "Hello!",
                      record={"model": {"name": "smollm2-135m", "general_name": "SmolLM2 135M Instruct"}})
    store.add_message(cid, "user", "And you?")
    store.add_message(cid, "assistant", "Hey.", record={"model": {"name": "gemma-3-270m", "general_name": ""}})
    store.add_message(cid, "user", "Old reply next")
    store.add_message(cid, "assistant", "(no record)")
    md = store.export_markdown(cid)
    assert "## Assistant · smollm2-135m (SmolLM2 135M Instruct)\n\nHello!" in md
    assert "## Assistant · gemma-3-270m\n\nHey." in md
    assert "## Assistant\n\n(no record)" in md


def test_calls_from_two_threads(store):
    cid = store.create("t")
    mids = [store.add_message(cid, "assistant", "") for _ in range(2)]
    errors: list[BaseException] = []

    def stream(mid: int, letter: str) -> None:
        try:
            for _ in range(200):
                store.append_to_message(mid, letter)
                store.list_conversations(letter)
        except BaseException as e:  # noqa: BLE001 - reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=stream, args=(m, ch)) for m, ch in zip(mids, "xy")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [m.content for m in store.load(cid).messages] == ["x" * 200, "y" * 200]
