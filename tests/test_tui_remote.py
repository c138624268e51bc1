"""The app on CoreEngine with a remote model (tests/openai_double.py as its server):
the same screens and reply as a local model, and a server's failures in the conversation."""

from __future__ import annotations

import pytest
from fake_engine import make_app, settle
from openai_double import OpenAIDouble
from textual.widgets import DataTable, Static

from chord_core.library import add_remote, list_remotes, remove_remote
from chord_core.sampling import SamplerSettings
from chord_tui.config import AppConfig
from chord_tui.core_engine import CoreEngine
from chord_tui.messages import SettingChanged
from chord_tui.screens.models import ModelsScreen
from chord_tui.widgets.message_view import MessageView
from chord_tui.widgets.token_view import TokenView

SIZE = (120, 40)


@pytest.fixture
def double():
    """A server, and a library entry for it that is gone after the test (the library is the session's)."""
    with OpenAIDouble() as server:
        add_remote("double", server.url)
        try:
            yield server
        finally:
            for entry in list_remotes():
                remove_remote(entry.name)


def remote_app(tmp_path, model: str = "double"):
    config = AppConfig(path=tmp_path / "config.toml", sampler=SamplerSettings(temperature=0.5, max_tokens=16))
    return make_app(tmp_path, CoreEngine(), config=config, model=model)


async def send(app, pilot, text: str) -> MessageView:
    app.chat.chat_input.focus()
    app.chat.chat_input.text = text
    await pilot.press("enter")
    await settle(app, pilot, rounds=400)
    return app.chat.query(MessageView).last()


def stored(app) -> list:
    return app.chat.state.store.load(app.chat.state.conversation_id).messages


async def test_a_remote_model_streams_its_reply_with_probabilities_and_a_rate(tmp_path, double):
    app = remote_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, rounds=200)
        assert app.engine.info is not None and app.engine.info.name == "double"
        reply = await send(app, pilot, "Hello there")
        assert reply.content == "Hello, world!" and [m.content for m in stored(app)][-1] == "Hello, world!"
        assert "tok/s" in app.chat.status.text() and "remote" in app.chat.status.text()
        assert [t[0] for t in reply.tokens] == double.reply and reply.tokens[1][1] == pytest.approx(0.8)
        await pilot.press("ctrl+t")
        reply.query_one(TokenView).action_select(1)
        await pilot.pause()
        assert "p=0.800" in reply.alternatives_text() and "'alt1'" in reply.alternatives_text()
        assert double.requests[-1]["messages"][-1] == {"role": "user", "content": "Hello there"}


async def test_a_slider_moved_applies_to_the_next_request(tmp_path, double):
    app = remote_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, rounds=200)
        await send(app, pilot, "one")
        app.post_message(SettingChanged("temperature", 1.3))
        await pilot.pause()
        await send(app, pilot, "two")
        assert [r["temperature"] for r in double.requests] == [0.5, 1.3]
        assert [m["content"] for m in double.requests[-1]["messages"]] == ["one", "Hello, world!", "two"]


async def test_without_logprobs_the_inspector_says_probabilities_are_unavailable(tmp_path, double):
    double.logprobs = False
    app = remote_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, rounds=200)
        reply = await send(app, pilot, "Hello")
        assert reply.content == "Hello, world!"
        await pilot.press("ctrl+t")
        reply.query_one(TokenView).action_select(0)
        await pilot.pause()
        assert "probability unavailable: the server sent no log-probabilities" in reply.alternatives_text()
        assert stored(app)[-1].record["tokens"][0][1] is None  # unknown, stored as null (no NaN in JSON)


async def test_server_failures_show_in_the_conversation_and_keep_it(tmp_path, double):
    app = remote_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, rounds=200)
        double.drop_after = 2
        dropped = await send(app, pilot, "first")
        assert dropped.content == "Hello," and "broke off mid-reply" in dropped.note
        double.drop_after, double.api_key = None, "not-what-you-sent"
        refused = await send(app, pilot, "second")
        assert "401" in refused.note and refused.content == ""
        double.api_key, double.models = None, ["a-newer-model"]  # the server let the model go
        gone = await send(app, pilot, "third")
        assert "has no model double-model (404" in gone.note
        double.stop()
        unreachable = await send(app, pilot, "fourth")
        assert "cannot reach" in unreachable.note
        messages = stored(app)
        assert [m.content for m in messages if m.role == "user"] == ["first", "second", "third", "fourth"]
        assert messages[1].content == "Hello," and "broke off" in messages[1].record["error"]
        assert "broke off mid-reply" in str(dropped.query_one(".message-header", Static).render())


async def test_the_models_screen_marks_remote_models_and_loads_one(tmp_path, double):
    add_remote("double-two", double.url, model="double-model")
    app = remote_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, rounds=200)
        await pilot.press("f4")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        table = screen.query_one(DataTable)
        rows = {table.get_row_at(i)[1]: table.get_row_at(i) for i in range(table.row_count)}
        assert rows["double"][4] == "remote" and rows["double"][0].startswith("●")
        assert rows["double-two"][4] == "remote" and not rows["double-two"][0].startswith("●")
        table.move_cursor(row=list(rows).index("double-two"))
        await pilot.pause()
        assert double.url in str(screen.query_one("#model-details", Static).render())
        await pilot.press("enter")
        await settle(app, pilot, rounds=200)
        assert app.engine.info.name == "double-two" and app.engine.info.quant == "double-model"
        rows = {table.get_row_at(i)[1]: table.get_row_at(i) for i in range(table.row_count)}
        assert rows["double-two"][0].startswith("●") and not rows["double"][0].startswith("●")


async def test_what_the_server_owns_is_refused_in_one_line_and_the_reply_stays(tmp_path, double):
    app = remote_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, rounds=200)
        await send(app, pilot, "story")
        await pilot.press("f3")  # the prompt view: the server renders the prompt, not chord-chat
        await settle(app, pilot)
        notes = [str(n.message) for n in app._notifications]
        assert any("renders the prompt with its own template" in n for n in notes)
        app.chat.chat_input.focus()
        await pilot.press("ctrl+g")  # continue: no OpenAI-compatible way to extend a reply
        await settle(app, pilot, rounds=200)
        reply = app.chat.query(MessageView).last()
        assert reply.content == "Hello, world!" and "continuing a reply needs a local model" in reply.note
        assert stored(app)[-1].content == "Hello, world!" and len(double.requests) == 1
