"""The whole app killed mid-reply: on restart the reply is in the database.

A child process runs the real ChordApp (headless pilot, fake engine
streaming a long reply) with its own database. The parent watches that
database with a read-only connection until 50+ words of the reply are
there, sends SIGKILL, then opens the database with a fresh
ConversationStore, as the next app start would.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from chord_tui.storage import ConversationStore

TESTS = Path(__file__).parent
WORDS = 200_000  # over 15 minutes of reply: however busy the machine, the app is killed mid-reply
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from fake_engine import FakeEngine, make_app, settle

    async def main():
        words = " ".join(f"w{i}" for i in range(int(sys.argv[3])))
        engine = FakeEngine(replies=[words], token_delay=0.005)
        app = make_app(Path(sys.argv[1]), engine)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            app.chat.chat_input.text = "count for me"
            await pilot.press("enter")
            while True:  # until the test kills it
                await pilot.pause(0.01)

    asyncio.run(main())
    """
)


def streamed_words(db: Path) -> int:
    """Words of the assistant reply committed so far (finished text or streamed chunks)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    except sqlite3.OperationalError:
        return 0
    try:
        row = con.execute(
            "SELECT coalesce((SELECT group_concat(text, '') FROM stream_chunks), '') || "
            "coalesce((SELECT group_concat(a.content, '') FROM alternatives a JOIN messages m "
            "ON m.id = a.message_id WHERE m.role = 'assistant'), '')").fetchone()
        return len(row[0].split()) if row and row[0] else 0
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        con.close()


def test_reply_survives_sigkill_of_the_app(tmp_path):
    env = {**os.environ, "CHORD_HOME": str(tmp_path / "home")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(TESTS), str(WORDS)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = tmp_path / "conversations.db"
    seen = 0
    deadline = time.monotonic() + 120
    try:
        while seen < 50:
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the reply never reached 50 words"
            time.sleep(0.05)
            seen = streamed_words(db) if db.exists() else 0
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL

    store = ConversationStore(db)  # what the next start of the app does
    convs = store.list_conversations()
    assert len(convs) == 1
    msgs = store.load(convs[0].id).messages
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert msgs[0].content == "count for me"
    words = msgs[1].content.split()
    assert len(words) >= seen  # nothing the parent saw committed was lost
    assert words == [f"w{i}" for i in range(len(words))]  # in order, no gaps
    assert len(words) < WORDS  # and it really was cut mid-reply
