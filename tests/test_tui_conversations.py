"""The conversation list: new, rename, delete (with confirmation), search, reopen."""

from __future__ import annotations

from fake_engine import DEFAULT_REPLY, FakeEngine, make_app, settle, stored
from textual.widgets import Input

from chord_tui.storage import ConversationStore
from chord_tui.widgets.conversation_list import ConversationList
from chord_tui.widgets.message_view import MessageView

SIZE = (120, 40)


async def send(app, pilot, text):
    app.chat.chat_input.focus()
    app.chat.chat_input.text = text
    await pilot.press("enter")
    await settle(app, pilot)


def titles(app):
    return app.chat.query_one(ConversationList).titles()


async def test_new_conversation_and_switching_between_them(tmp_path):
    app = make_app(tmp_path, FakeEngine(replies=["a1", "b1"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "alpha")
        first = app.chat.state.conversation_id
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.chat.state.conversation_id is None
        assert not app.chat.query(MessageView)
        await send(app, pilot, "beta")
        assert titles(app) == ["beta", "alpha"]  # newest first
        # choose "alpha" in the list
        view = app.chat.query_one("#conversation-items")
        view.focus()
        view.index = 1
        await pilot.press("enter")
        await pilot.pause()
        assert app.chat.state.conversation_id == first
        assert [v.content for v in app.chat.query(MessageView)] == ["alpha", "a1"]
        assert app.chat.sub_title == "alpha"


async def test_rename_current_conversation(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "old name")
        await pilot.press("f2")
        await pilot.pause()
        field = app.screen.query_one("#dialog-input", Input)
        field.value = "Shiny new name"
        await pilot.press("enter")
        await pilot.pause()
        assert titles(app) == ["Shiny new name"]
        assert app.chat.state.store.load(app.chat.state.conversation_id).title == "Shiny new name"
        assert app.chat.sub_title == "Shiny new name"


async def test_delete_asks_first_and_cancel_keeps_it(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "doomed")
        await send(app, pilot, "x")  # same conversation
        view = app.chat.query_one("#conversation-items")
        view.focus()
        view.index = 0
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("escape")  # cancel
        await pilot.pause()
        assert titles(app) == ["doomed"]
        view.focus()
        await pilot.press("delete")
        await pilot.pause()
        await pilot.click("#confirm")
        await pilot.pause()
        assert titles(app) == []
        assert app.chat.state.store.list_conversations() == []
        assert app.chat.state.conversation_id is None and not app.chat.query(MessageView)


async def test_search_filters_by_title_and_text(tmp_path):
    app = make_app(tmp_path, FakeEngine(replies=["about cats", "about dogs"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "first")
        await pilot.press("ctrl+n")
        await send(app, pilot, "second")
        await pilot.press("ctrl+f")
        assert app.focused.id == "conversation-search"
        await pilot.press(*"dogs")  # matches the reply text of "second"
        await pilot.pause()
        assert titles(app) == ["second"]
        await pilot.press(*"xyz")
        await pilot.pause()
        assert titles(app) == []
        app.focused.value = ""
        await pilot.pause()
        assert titles(app) == ["second", "first"]


async def test_enter_opens_a_search_match_from_the_box_or_the_list(tmp_path):
    app = make_app(tmp_path, FakeEngine(replies=["about cats", "about dogs"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "alpha")
        await settle(app, pilot)
        first = app.chat.state.conversation_id
        await pilot.press("ctrl+n")
        await send(app, pilot, "beta")
        await settle(app, pilot)
        await pilot.press("ctrl+f", *"alpha")
        await pilot.pause()
        assert titles(app) == ["alpha"]
        await pilot.press("enter")  # from the search box
        await settle(app, pilot)
        assert app.chat.state.conversation_id == first
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        await pilot.press("ctrl+f")
        app.focused.value = "beta"
        await pilot.pause()
        await pilot.press("tab", "enter")  # from the list, no arrow key first
        await settle(app, pilot)
        assert app.chat.state.title == "beta"


async def test_conversations_persist_across_app_runs(tmp_path):
    store_path = tmp_path / "conversations.db"
    app = make_app(tmp_path, store=ConversationStore(store_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "remember me")
    app = make_app(tmp_path, store=ConversationStore(store_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert titles(app) == ["remember me"]
        view = app.chat.query_one("#conversation-items")
        view.focus()
        view.index = 0
        await pilot.press("enter")
        await pilot.pause()
        assert [v.content for v in app.chat.query(MessageView)] == ["remember me", DEFAULT_REPLY]


async def test_system_prompt_is_sent_and_stored(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.chat.query_one("#system-prompt").text = "Be brief."
        await pilot.pause()
        await send(app, pilot, "hi")
        assert engine.calls[0]["messages"][0] == {"role": "system", "content": "Be brief."}
        conv = app.chat.state.store.load(app.chat.state.conversation_id)
        assert conv.system_prompt == "Be brief."


async def test_reopening_a_conversation_shows_the_context_it_uses(tmp_path):
    app = make_app(tmp_path, FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "hello")
        first = app.chat.state.conversation_id
        used = stored(app)[-1].record["stats"]["n_past"]
        assert used > 0
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert " 0/2048" in app.chat.status.text()
        await app.chat.open_conversation(first)
        await pilot.pause()
        assert f" {used}/2048" in app.chat.status.text()


async def test_a_chat_started_while_searching_stays_in_the_list(tmp_path):
    app = make_app(tmp_path, FakeEngine(replies=["about cats", "about dogs"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "first")
        await pilot.press("ctrl+f", *"cats")
        await pilot.pause()
        assert titles(app) == ["first"]
        await pilot.press("ctrl+n")
        await send(app, pilot, "a new question")
        assert app.query_one("#conversation-search", Input).value == "cats"  # still filtering
        assert titles(app) == ["a new question", "first"]
        items = app.chat.query_one("#conversation-items")
        assert items.highlighted_child.conversation_id == app.chat.state.conversation_id
        await pilot.press("ctrl+f", "end", "backspace")  # a new search: only what matches
        await pilot.pause()
        assert app.query_one("#conversation-search", Input).value == "cat"
        assert titles(app) == ["first"]
