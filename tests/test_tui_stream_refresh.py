"""A streaming reply is redrawn at most every ``stream_refresh_s``: tokens
that arrive in between wait in the buffer, a timer delivers them together,
and the end of a reply is never held back."""

from __future__ import annotations

from fake_engine import FakeEngine, make_app, send, settle, split_tokens, start, stored, wait_until

from chord_core.events import TokenEvent
from chord_tui.widgets.message_view import MessageView

REPLY = " ".join(f"word{i}" for i in range(20))
PIECES = split_tokens(REPLY)


def shown(app) -> str:
    return app.chat.query(MessageView).last().content


async def test_tokens_within_one_interval_wait_and_the_end_is_never_held(tmp_path):
    engine = FakeEngine(replies=[REPLY], gated=True)
    app = make_app(tmp_path, engine, stream_refresh_s=3600)  # no redraw timer fires during the test
    async with app.run_test(size=(100, 30)) as pilot:
        await start(app, pilot)
        await send(app, pilot, "go")
        # the first batch (Started) is handled at once and starts the interval
        await wait_until(pilot, lambda: app.chat.status.state == "generating")
        gen = app.chat.state.generation
        engine.release(5)
        await wait_until(pilot, lambda: len(engine.seen_settings) == 5 and gen.buffer.holds(TokenEvent))
        await pilot.pause()  # the UI has handled the ReplyEvents message: it holds the batch
        assert shown(app) == ""
        engine.release(len(PIECES))
        await settle(app, pilot)
        assert shown(app) == REPLY
        assert stored(app)[-1].content == REPLY


async def test_a_held_batch_is_drawn_by_the_timer_before_the_reply_ends(tmp_path):
    engine = FakeEngine(replies=[REPLY], gated=True)
    app = make_app(tmp_path, engine, stream_refresh_s=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await start(app, pilot)
        await send(app, pilot, "go")
        engine.release(1)
        await wait_until(pilot, lambda: shown(app) == PIECES[0])
        engine.release(5)
        await wait_until(pilot, lambda: shown(app) == "".join(PIECES[:6]))
        assert app.chat.state.generation is not None  # drawn mid-reply, not by the end
        engine.release(len(PIECES))
        await settle(app, pilot)
        assert shown(app) == REPLY
