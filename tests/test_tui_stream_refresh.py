"""A streaming reply is redrawn at most every ``stream_refresh_s``, and the
held-back tokens still all arrive, in order, by the end."""

from __future__ import annotations

from fake_engine import FakeEngine, make_app, settle

from chord_tui.widgets.message_view import MessageView


async def test_redraws_are_batched_and_nothing_is_lost(tmp_path, monkeypatch):
    reply = " ".join(f"word{i}" for i in range(300))
    engine = FakeEngine(replies=[reply], token_delay=0.002)
    appends: list[str] = []
    original = MessageView.append

    async def counting_append(self, text, tokens):
        appends.append(text)
        await original(self, text, tokens)

    monkeypatch.setattr(MessageView, "append", counting_append)
    app = make_app(tmp_path, engine, stream_refresh_s=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.chat.chat_input.text = "go"
        await pilot.press("enter")
        for _ in range(400):  # the timer-driven batches need real time to pass
            await pilot.pause(0.05)
            if app.chat.state.generation is None:
                break
        await settle(app, pilot)
        assert "".join(appends) == reply
        assert len(appends) <= 300 // 5, len(appends)  # ~0.6 s of tokens at 0.2 s a redraw
        views = app.chat.query(MessageView)
        assert views[-1].content == reply
        stored = app.chat.state.store.load(app.chat.state.conversation_id).messages
        assert stored[-1].content == reply
