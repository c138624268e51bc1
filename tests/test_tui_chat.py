"""Pilot tests of the chat screen: sending, stopping, regenerating, editing,
continuing, copying, exporting, live sampler changes, typing while a reply streams."""

from __future__ import annotations

import json

from textual import events

from fake_engine import DEFAULT_REPLY, FakeEngine, make_app, send, settle, split_tokens, start, stored, wait_until

from chord_core.sampling import SamplerSettings
from chord_tui.config import AppConfig
from chord_tui.widgets.chat_input import ChatInput
from chord_tui.widgets.message_view import MessageView
from chord_tui.widgets.setting_slider import SettingSlider

SIZE = (120, 40)


async def test_enter_sends_and_reply_streams_into_store_and_view(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press(*"hello")
        await pilot.press("enter")
        await settle(app, pilot)
        assert engine.calls[0]["messages"] == [{"role": "user", "content": "hello"}]
        assert len(engine.calls) == 1 and not [n for n in app._notifications if n.severity != "information"]
        msgs = stored(app)
        assert [(m.role, m.content) for m in msgs] == [("user", "hello"), ("assistant", DEFAULT_REPLY)]
        record = msgs[1].record
        assert record["finish_reason"] == "stop"
        assert len(record["tokens"]) == len(split_tokens(DEFAULT_REPLY))
        assert record["seed"] == 1234  # the engine's own record is kept
        views = app.chat.query(MessageView)
        assert [v.role for v in views] == ["user", "assistant"]
        assert views[1].content == DEFAULT_REPLY
        assert app.chat.chat_input.text == ""  # sent text leaves the box
        assert app.chat.state.title == "hello"  # first message names the chat
        assert "42.5 tok/s" in app.chat.status.text() and "ttft 0.12s" in app.chat.status.text()


async def test_shift_enter_and_ctrl_j_insert_newlines(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("a", "ctrl+j", "b", "shift+enter", "c")
        assert app.chat.chat_input.text == "a\nb\nc"
        assert app.engine.calls == []  # nothing was sent
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.engine.calls[0]["messages"][-1]["content"] == "a\nb\nc"


async def test_empty_message_and_no_model_do_not_send(tmp_path):
    engine = FakeEngine(models=[])
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await send(app, pilot, "hi")
        await settle(app, pilot)
        assert engine.calls == []
        assert app.chat.chat_input.text == "hi"  # kept for when a model is loaded
        assert any("No model" in n.message for n in app._notifications)


async def test_escape_stops_mid_stream_and_keeps_partial_reply(tmp_path):
    engine = FakeEngine(gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "tell me")
        engine.release(3)
        await wait_until(pilot, lambda: len(app.chat.state.generation.tokens) == 3)
        await pilot.press("escape")
        await settle(app, pilot)
        reply = stored(app)[-1]
        assert reply.content == "".join(split_tokens(DEFAULT_REPLY)[:3])
        assert reply.record["finish_reason"] == "cancelled"
        assert "stopped" in app.chat.status.text()
        assert app.chat.state.generation is None
        # still usable: the next message gets a full reply
        engine.gated = False
        await send(app, pilot, "again")
        await settle(app, pilot)
        assert stored(app)[-1].content == DEFAULT_REPLY


async def test_regenerate_keeps_the_old_reply_as_an_alternative(tmp_path):
    engine = FakeEngine(replies=["first answer", "second answer"])
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "q")
        await settle(app, pilot)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        reply = stored(app)[-1]
        assert reply.alternatives == ["first answer", "second answer"] and reply.active == 1
        assert engine.calls[1]["messages"] == [{"role": "user", "content": "q"}]  # not the old reply
        view = app.chat.query(MessageView).last()
        assert view.content == "second answer" and "2/2" in str(view.header())
        # flip back with [ on the focused conversation, forward with ]
        app.chat.conversation.focus()
        await pilot.press("left_square_bracket")
        await settle(app, pilot)
        assert stored(app)[-1].active == 0
        assert app.chat.query(MessageView).last().content == "first answer"
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert stored(app)[-1].content == "second answer"


async def test_edit_user_message_truncates_and_resends(tmp_path):
    engine = FakeEngine(replies=["r1", "r2", "r3"])
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "one")
        await settle(app, pilot)
        await send(app, pilot, "two")
        await settle(app, pilot)
        first_user = stored(app)[0]
        app.chat.conversation.focus()
        await pilot.press("up", "up", "up", "up")  # select the first message
        assert app.chat.conversation.selected.message_id == first_user.id
        await pilot.press("e")
        await pilot.pause()
        from textual.widgets import TextArea
        area = app.screen.query_one("#edit-text", TextArea)
        area.text = "one, edited"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        msgs = stored(app)
        assert [(m.role, m.content) for m in msgs] == [("user", "one, edited"), ("assistant", "r3")]
        assert engine.calls[-1]["messages"] == [{"role": "user", "content": "one, edited"}]


async def test_the_edit_dialog_resends_with_enter_and_ctrl_j_adds_a_line(tmp_path):
    engine = FakeEngine(replies=["r1", "r2"])
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "one")
        await settle(app, pilot)
        await app.chat.action_edit_last()  # "Edit last message" in the command palette
        await pilot.pause()
        assert app.focused.id == "edit-text"
        await pilot.press("end", "ctrl+j", *"two", "enter")
        await wait_until(pilot, lambda: app.screen is app.chat)
        await settle(app, pilot)
        assert [(m.role, m.content) for m in stored(app)] == [("user", "one\ntwo"), ("assistant", "r2")]


async def test_continue_appends_to_the_last_reply(tmp_path):
    engine = FakeEngine(replies=["Once upon", " a time."])
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "story")
        await settle(app, pilot)
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert engine.calls[-1]["continue_reply"] is True
        assert engine.calls[-1]["messages"][-1] == {"role": "assistant", "content": "Once upon"}
        reply = stored(app)[-1]
        assert reply.content == "Once upon a time."
        assert len(reply.alternatives) == 1
        assert len(reply.record["tokens"]) == len(split_tokens("Once upon")) + len(split_tokens(" a time."))
        assert app.chat.query(MessageView).last().content == "Once upon a time."


async def test_continue_says_why_when_the_model_has_nothing_to_add(tmp_path):
    app = make_app(tmp_path, FakeEngine(replies=["The end.", ""]))  # the second stream ends at once
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("ctrl+g")  # no reply yet
        assert any("Nothing to continue yet" in n.message for n in app._notifications)
        await send(app, pilot, "story")
        await settle(app, pilot)
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert stored(app)[-1].content == "The end."
        assert any("nothing to add" in n.message and "Ctrl+R" in n.message for n in app._notifications)


async def test_copy_message_and_code_blocks(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "code please")
        await settle(app, pilot)
        app.chat.conversation.focus()
        await pilot.press("c")  # nothing selected: acts on the last message
        assert app.clipboard == DEFAULT_REPLY
        await pilot.press("b")
        assert app.clipboard == "print('hi')"
        await pilot.press("up", "up", "c")  # the first Up selects the last message
        assert app.clipboard == "code please"


async def test_clicking_a_code_block_copies_it(tmp_path):
    from chord_tui.widgets.message_view import CopyableFence

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "code please")
        await settle(app, pilot)
        fence = app.chat.query_one(CopyableFence)
        await pilot.click(fence)
        assert app.clipboard == "print('hi')"


async def test_export_writes_markdown_and_json(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "export me")
        await settle(app, pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        files = sorted((tmp_path / "exports").iterdir())
        assert [f.suffix for f in files] == [".json", ".md"]
        md = files[1].read_text()
        assert md.startswith("# export me") and "## User\n\nexport me" in md and "print('hi')" in md
        data = json.loads(files[0].read_text())
        assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
        assert data["messages"][1]["content"] == DEFAULT_REPLY
        assert any(str(files[1]) in n.message for n in app._notifications)


async def test_slider_change_mid_stream_reaches_the_next_token(tmp_path):
    engine = FakeEngine(gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        before = app.live_settings.snapshot().temperature
        await send(app, pilot, "go")
        engine.release(2)
        await wait_until(pilot, lambda: len(engine.seen_settings) == 2)
        slider = app.chat.query_one("#setting-temperature", SettingSlider)
        slider.slider.focus()
        await pilot.press("right", "right")  # +0.10, by keyboard
        assert slider.value == round(before + 0.10, 4)
        engine.release(1)
        await wait_until(pilot, lambda: len(engine.seen_settings) == 3)
        assert [s.temperature for s in engine.seen_settings] == [before, before, round(before + 0.10, 4)]
        engine.release(100)
        await settle(app, pilot)
        assert app.config.sampler.temperature == round(before + 0.10, 4)


async def test_slider_works_by_mouse_and_shows_its_value(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        setting = app.chat.query_one("#setting-top-p", SettingSlider)
        await pilot.click(setting.slider, offset=(0, 0))  # far left: 0.00
        await pilot.pause()
        assert setting.value == 0.0
        assert app.live_settings.snapshot().top_p == 0.0
        assert str(setting.query_one(".setting-value").render()) == "0.00"


async def test_seed_field_updates_live_settings(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.chat.query_one("#seed").focus()
        await pilot.press(*"42")
        assert app.live_settings.snapshot().seed == 42
        await pilot.press("backspace", "backspace")
        assert app.live_settings.snapshot().seed is None


async def test_side_panel_toggle_and_narrow_terminal(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(130, 40)) as pilot:
        await start(app, pilot)
        panel = app.chat.query_one("#side-panel")
        assert panel.display
        await pilot.press("ctrl+b")
        assert not panel.display and app.config.side_panel_visible is False
        await pilot.press("ctrl+b")
        assert panel.display
    app = make_app(tmp_path / "narrow")
    async with app.run_test(size=(80, 24)) as pilot:
        await start(app, pilot)
        assert not app.chat.query_one("#side-panel").display
        assert not app.chat.query_one("#conversations").display
        await send(app, pilot, "small screen")
        await settle(app, pilot)
        assert stored(app)[-1].content == DEFAULT_REPLY
        await pilot.press("ctrl+b")  # can still be opened on demand
        assert app.chat.query_one("#side-panel").display


async def test_engine_error_is_shown_and_app_stays_usable(tmp_path):
    engine = FakeEngine(fail_stream="out of memory")
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "hi")
        await settle(app, pilot)
        assert stored(app)[-1].record["error"] == "out of memory"
        assert any("out of memory" in n.message for n in app._notifications)
        engine.fail_stream = None
        await send(app, pilot, "again")
        await settle(app, pilot)
        assert stored(app)[-1].content == DEFAULT_REPLY


async def test_typing_lands_while_a_reply_streams(tmp_path):
    """Keys typed while the engine streams as fast as it can reach the input
    before the reply ends (how fast they land is measured by
    benchmarks/ui_responsiveness.py, not asserted here)."""
    # Paragraphs, like real replies: Markdown re-parses only the last block per append.
    long_reply = "\n\n".join(" ".join(f"word{p}_{i}" for i in range(30)) for p in range(40))
    pieces = split_tokens(long_reply)
    engine = FakeEngine(replies=[long_reply], gated=True)
    config = AppConfig(path=tmp_path / "config.toml", sampler=SamplerSettings(max_tokens=None))  # the whole reply
    app = make_app(tmp_path, engine, config=config, stream_refresh_s=0.1)  # the app's own redraw pacing
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "go")
        chat_input = app.chat.query_one(ChatInput)
        chat_input.focus()
        engine.release(len(pieces) - 1)  # a flood of tokens; the last one waits for the test
        # pilot.press waits for the app to go idle, which it may not while
        # streaming; so post the keys and wait until the TextArea shows them
        for key in "typing":
            chat_input.post_message(events.Key(key, key))
        await wait_until(pilot, lambda: chat_input.text == "typing", rounds=2000)
        assert app.chat.state.generation is not None  # typed while the reply was still open
        engine.release(1)
        await settle(app, pilot, rounds=500)
        assert chat_input.text == "typing"
        assert stored(app)[-1].content == long_reply


async def test_header_links_work_by_mouse(tmp_path):
    engine = FakeEngine(replies=["one", "two"])
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await send(app, pilot, "q")
        await settle(app, pilot)
        reply = app.chat.query(MessageView).last()
        header = reply.query_one(".message-header")
        text = str(reply.header())
        await pilot.click(header, offset=(text.index("copy"), 0))
        assert app.clipboard == "one"
        await pilot.click(header, offset=(text.index("regenerate"), 0))
        await settle(app, pilot)
        assert stored(app)[-1].alternatives == ["one", "two"]
        text = str(reply.header())
        await pilot.click(header, offset=(text.index("‹"), 0))  # previous alternative
        await settle(app, pilot)
        assert stored(app)[-1].content == "one"
