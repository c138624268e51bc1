"""A process killed mid-reply keeps the conversation and the streamed tokens.

The child writes through ConversationStore exactly as the App does while a
reply streams, and reports each append on stdout only after the call
returned. The parent kills it with SIGKILL (no cleanup, no atexit, no
finish_message) and then reads the database from a fresh store.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from chord_tui.storage import ConversationStore

MAX_TOKENS = 1_000_000  # about 3 hours: however busy the machine, the child is killed first
KILL_AFTER = 50

CHILD = textwrap.dedent(
    """
    import sys, time
    from chord_tui.storage import ConversationStore

    store = ConversationStore(sys.argv[1])
    conv = store.create("killed mid-reply", system_prompt="sys", model="tiny")
    user = store.add_message(conv, "user", "Count for me, please.")
    reply = store.add_message(conv, "assistant", "", record={"seed": 42})
    print("ids", conv, user, reply, flush=True)
    for i in range(int(sys.argv[2])):
        store.append_to_message(reply, f"t{i} ")
        print(i + 1, flush=True)
        time.sleep(0.01)
    print("done", flush=True)
    """
)


def expected_text(n: int) -> str:
    return "".join(f"t{i} " for i in range(n))


def test_sigkill_mid_reply_loses_no_appended_token(tmp_path):
    db_path = tmp_path / "conversations.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path), str(MAX_TOKENS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        header = child.stdout.readline().split()
        assert header and header[0] == "ids", f"child failed to start: {header} {child.stderr.read()}"
        conv_id, user_id, reply_id = map(int, header[1:])
        appended = 0
        while appended < KILL_AFTER:
            line = child.stdout.readline().strip()
            assert line and line != "done", f"child ended early after {appended}: {child.stderr.read()}"
            appended = int(line)
        child.kill()  # SIGKILL on POSIX
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode != 0, "the child must have been killed, not have finished"

    with ConversationStore(db_path) as store:
        assert [s.id for s in store.list_conversations()] == [conv_id]
        conv = store.load(conv_id)
        assert (conv.title, conv.system_prompt, conv.model) == ("killed mid-reply", "sys", "tiny")
        user, reply = conv.messages
        assert (user.id, user.role, user.content) == (user_id, "user", "Count for me, please.")
        assert (reply.id, reply.role, reply.record) == (reply_id, "assistant", {"seed": 42})

        # The child may have appended more after its last line was read, never fewer.
        kept = reply.content.count(" ")
        assert kept >= appended, f"{appended} appends reported, only {kept} survived"
        assert kept < MAX_TOKENS
        assert reply.content == expected_text(kept)
