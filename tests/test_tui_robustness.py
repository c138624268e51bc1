"""What must not take the app down or mislead: editing a reply, a damaged
library, a remembered model that is gone, stale status numbers."""

from __future__ import annotations

from fake_engine import FakeEngine, make_app, settle, wait_until

from chord_core.errors import ChordError
from chord_tui.config import AppConfig

SIZE = (120, 40)


async def test_edit_is_refused_on_a_reply_and_the_app_keeps_running(tmp_path):
    engine = FakeEngine(replies=["a reply"])
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.chat.chat_input.text = "hello"
        await pilot.press("enter")
        await settle(app, pilot)
        app.chat.conversation.focus()
        await pilot.press("e")  # nothing selected: acts on the last message, the reply
        await pilot.pause()
        assert app.screen is app.chat  # no edit dialog opened
        assert any("Only your own messages" in n.message for n in app._notifications)
        assert app.is_running


class BrokenLibraryEngine(FakeEngine):
    def default_model(self):
        raise ChordError("library.json: damaged index (Expecting property name)")

    def list_models(self):
        raise ChordError("library.json: damaged index (Expecting property name)")


async def test_a_damaged_library_is_reported_not_fatal(tmp_path):
    app = make_app(tmp_path, BrokenLibraryEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert any("damaged index" in n.message for n in app._notifications)
        await pilot.press("f4")  # the models screen lists the library too
        await pilot.pause()
        assert app.is_running and app.screen.sub_title == "Models"


class SlowLibraryEngine(FakeEngine):
    """A first start: finding the default unpacks the demo model (slow); here
    the lookup waits until the test has looked at the UI."""

    def __post_init__(self):
        super().__post_init__()
        import threading

        self.lookup_gate = threading.Event()
        self.lookup_thread = None

    def default_model(self):
        import threading

        self.lookup_thread = threading.current_thread()
        assert self.lookup_gate.wait(10)
        return super().default_model()


async def test_the_first_lookup_of_the_default_model_does_not_block_the_ui(tmp_path):
    import threading

    from fake_engine import wait_until

    engine = SlowLibraryEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        # the lookup is under way and the UI still answers: a blocked UI thread would hang here
        await wait_until(pilot, lambda: engine.lookup_thread is not None)
        assert engine.lookup_thread is not threading.main_thread()
        assert "looking for models" in app.chat.status.text()
        app.chat.chat_input.text = "typed while looking"
        await pilot.pause()
        engine.lookup_gate.set()
        await settle(app, pilot)
        assert engine.loads == ["smollm2-135m"]
        assert app.engine.info.name == "smollm2-135m"
        assert app.chat.chat_input.text == "typed while looking"


async def test_a_model_picked_during_the_lookup_is_not_replaced_by_the_default(tmp_path):
    from fake_engine import wait_until

    engine = SlowLibraryEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: engine.lookup_thread is not None)
        app.load_model("gemma-3-270m")  # what Enter on the models screen does
        await settle(app, pilot)
        assert app.engine.info.name == "gemma-3-270m"
        engine.lookup_gate.set()
        await app.workers.wait_for_complete()
        await settle(app, pilot)
        assert engine.loads == ["gemma-3-270m"]
        assert app.engine.info.name == "gemma-3-270m"


async def test_an_empty_library_says_how_to_get_a_model(tmp_path):
    engine = FakeEngine()
    engine.models = []
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert engine.loads == []
        assert "no model" in app.chat.status.text()
        assert any("press F4" in n.message for n in app._notifications)


async def test_a_remembered_model_that_is_gone_falls_back_to_the_default(tmp_path):
    engine = FakeEngine(fail_load={"deleted-model": "no such model"})
    config = AppConfig(path=tmp_path / "config.toml", last_model="deleted-model")
    app = make_app(tmp_path, engine, config=config)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await settle(app, pilot)
        assert engine.loads == ["deleted-model", "smollm2-135m"]
        assert app.engine.info.name == "smollm2-135m"
        assert app.config.last_model == "smollm2-135m"


async def test_a_new_chat_does_not_show_the_last_replys_numbers(tmp_path):
    app = make_app(tmp_path, FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.chat.chat_input.text = "hello"
        await pilot.press("enter")
        await settle(app, pilot)
        assert "tok/s" in app.chat.status.text()
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        text = app.chat.status.text()
        assert "tok/s" not in text and " 0/" in text


async def test_a_second_pull_waits_instead_of_cancelling_the_first(tmp_path):
    from textual.widgets import Input

    engine = FakeEngine(pull_gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f4")
        await pilot.pause()
        screen = app.screen
        source = screen.query_one("#pull-source", Input)
        source.value = "hf:someone/repo/first.gguf"
        await pilot.click("#pull")
        await wait_until(pilot, lambda: engine.pulls == ["hf:someone/repo/first.gguf"])
        # The second pull is asked for with Enter: a Button ignores a click
        # while its 0.2 s press effect shows, so a second click would be lost
        # or not depending on how busy the machine is.
        source.value = "hf:someone/repo/second.gguf"
        source.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("Queued" in n.message for n in app._notifications))
        assert engine.pulls == ["hf:someone/repo/first.gguf"]  # queued, not started beside the first
        engine.release_pull(10)  # five progress steps each: the first, then the second
        await settle(app, pilot)
        assert engine.pulls == ["hf:someone/repo/first.gguf", "hf:someone/repo/second.gguf"]
        assert {"first", "second"} <= {m.name for m in engine.models}
        assert not any("Could not pull" in n.message for n in app._notifications)


async def test_the_theme_is_saved_for_the_next_start(tmp_path):
    app = make_app(tmp_path, FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.theme = "nord"
        app.save_config()
    assert AppConfig.load(tmp_path / "config.toml").theme == "nord"


async def test_a_stopped_reply_still_says_so_when_the_chat_is_reopened(tmp_path):
    from chord_tui.widgets.message_view import MessageView

    store_path = tmp_path / "conversations.db"
    engine = FakeEngine(replies=["one two three four five six seven eight"], gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.chat.chat_input.text = "go"
        await pilot.press("enter")
        engine.release(2)
        await wait_until(pilot, lambda: len(app.chat.state.generation.tokens) == 2)
        await pilot.press("escape")
        engine.release(10)
        await settle(app, pilot)
        assert "(stopped)" in str(app.chat.query(MessageView).last().header())
    app2 = make_app(tmp_path, FakeEngine())
    async with app2.run_test(size=SIZE) as pilot:
        await settle(app2, pilot)
        convs = app2.store.list_conversations()
        await app2.chat.open_conversation(convs[0].id)
        await pilot.pause()
        assert "(stopped)" in str(app2.chat.query(MessageView).last().header())
    assert store_path.exists()
