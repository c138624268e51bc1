"""The UI's pure pieces: event buffer, conversation state rules, status bar, helpers."""

from __future__ import annotations

import threading

import pytest

from chord_core.events import Done, Stats, TokenAlternative, TokenEvent
from chord_tui.messages import EventBuffer
from chord_tui.conversation_state import ConversationState, title_from
from chord_tui.storage import ConversationStore
from chord_tui.widgets.message_view import code_blocks
from chord_tui.widgets.status_bar import StatusBar, meter
from chord_tui.token_records import tokens_from_record
from chord_tui.widgets.token_view import describe, visible


def test_event_buffer_signals_once_per_batch_and_keeps_order():
    buf = EventBuffer()
    assert buf.put("a") is True
    assert buf.put("b") is False  # a wake-up is already pending
    assert buf.drain() == ["a", "b"]
    assert buf.put("c") is True  # drained: the next put wakes the UI again
    assert buf.drain() == ["c"]
    assert buf.drain() == []


def test_event_buffer_from_many_threads_loses_nothing():
    buf = EventBuffer()
    signals = []

    def produce(k):
        for i in range(1000):
            if buf.put((k, i)):
                signals.append(1)

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    got = []
    while any(t.is_alive() for t in threads):
        got += buf.drain()
    for t in threads:
        t.join()
    got += buf.drain()
    assert sorted(got) == sorted((k, i) for k in range(4) for i in range(1000))
    for k in range(4):  # per producer, order is kept
        assert [i for kk, i in got if kk == k] == list(range(1000))
    assert 1 <= len(signals) <= len(got)


def _token(i, text):
    return TokenEvent(id=i, piece=text, text=text, prob=0.5, alternatives=(TokenAlternative(i, text, 0.5),))


def _done(text, reason="stop"):
    stats = Stats(1, 1.0, 1.0, 0.1, 1, 2, 100)
    return Done(reason=reason, text=text, token_ids=(1,), stats=stats, record={"k": 1})


@pytest.fixture
def state(tmp_path):
    store = ConversationStore(tmp_path / "c.db")
    yield ConversationState(store)
    store.close()


def test_state_send_finish_and_engine_messages(state):
    state.pending_system_prompt = "sys"
    gen = state.send("Hello there\nsecond line")
    assert state.title == "Hello there"
    assert gen.messages == [{"role": "system", "content": "sys"}, {"role": "user", "content": "Hello there\nsecond line"}]
    state.add_tokens(gen, [_token(1, "Hi"), _token(2, "!")])
    # streamed text is already in the store before the reply finishes
    assert state.store.load(state.conversation_id).messages[-1].content == "Hi!"
    note = state.finish(gen, _done("Hi!"))
    assert note == "" and state.generation is None
    reply = state.messages[-1]
    assert reply.content == "Hi!" and reply.record["k"] == 1 and len(reply.record["tokens"]) == 2


def test_state_cancelled_reply_is_kept_with_a_note(state):
    gen = state.send("q")
    state.add_tokens(gen, [_token(1, "part")])
    assert state.finish(gen, _done("part", "cancelled")) == "stopped"
    assert state.messages[-1].content == "part"


def test_state_regenerate_only_the_last_reply(state):
    gen = state.send("q1")
    state.finish(gen, _done("a1"))
    first_reply = state.messages[-1].id
    gen = state.send("q2")
    state.finish(gen, _done("a2"))
    with pytest.raises(ValueError):
        state.regenerate(first_reply)
    gen = state.regenerate(state.messages[-1].id)
    assert gen.messages[-1] == {"role": "user", "content": "q2"}
    state.finish(gen, _done("a2 again"))
    assert state.messages[-1].alternatives == ["a2", "a2 again"]
    assert state.flip(state.messages[-1].id, 1) and state.messages[-1].content == "a2"


def test_state_continue_uses_base_text(state):
    gen = state.send("q")
    state.finish(gen, _done("Once"))
    gen = state.continue_reply(state.messages[-1].id)
    assert gen.messages[-1] == {"role": "assistant", "content": "Once"}
    state.add_tokens(gen, [_token(1, " more")])
    state.finish(gen, _done(" more"))
    assert state.messages[-1].content == "Once more"
    # an engine that reports the whole text is not doubled
    gen = state.continue_reply(state.messages[-1].id)
    state.add_tokens(gen, [_token(1, "!")])
    state.finish(gen, _done("Once more!"))
    assert state.messages[-1].content == "Once more!"


def test_state_export(state, tmp_path):
    with pytest.raises(ValueError):
        state.export(tmp_path / "out")
    gen = state.send("Export: this / that")
    state.finish(gen, _done("ok"))
    md, js = state.export(tmp_path / "out")
    assert md.name.startswith("export-this-that-") and md.read_text().startswith("# Export: this / that")
    assert js.suffix == ".json"


def test_an_empty_reply_is_not_sent_back_to_the_model(tmp_path):
    store = ConversationStore(tmp_path / "c.db")
    state = ConversationState(store)
    gen = state.send("first question")
    state.finish(gen, None, error="engine error: boom")  # nothing arrived
    gen = state.send("second question")
    assert gen.messages == [{"role": "user", "content": "first question\n\nsecond question"}]
    store.close()


def test_title_from():
    assert title_from("\n\n  hi  \nthere") == "hi"
    assert title_from("") == "New chat"
    assert len(title_from("x" * 100)) == 40 and title_from("x" * 100).endswith("…")


def test_meter_and_status_text():
    assert meter(0, 100) == "░" * 10
    assert meter(50, 100) == "█" * 5 + "░" * 5
    assert meter(500, 100) == "█" * 10
    now = [10.0]
    bar = StatusBar(lambda: now[0])
    bar.refresh_text = lambda: None  # not mounted
    bar.model, bar.memory_mb = "m", 12.4
    bar.reply_started(prompt_tokens=40, n_ctx=100)
    bar.tokens_arrived(1)  # first token: no decode rate yet
    assert "…" in bar.text()
    now[0] = 11.0
    bar.tokens_arrived(4)  # 4 more tokens in 1 s of the injected clock
    assert "generating 4.0 tok/s" in bar.text()
    assert "45/100" in bar.text() and "12 MB" in bar.text() and bar.text().endswith("m")
    bar.reply_finished("stop", Stats(40, 250.0, 30.0, 0.5, 5, 45, 100))
    assert "30.0 tok/s · prompt 40 · prefill 250 tok/s · ttft 0.50s" in bar.text()


def test_token_helpers():
    record = {"tokens": [["a", 0.5, [["a", 0.5], ["b", 0.25]]]]}
    tokens = tokens_from_record(record)
    assert tokens == [("a", 0.5, [("a", 0.5), ("b", 0.25)])]
    assert "token 1: 'a'  p=0.500" in describe(tokens[0], 0)
    assert "Select a token" in describe(None, -1)
    assert visible(" ") == "·" and visible("\n") == "↵\n" and visible("x ") == "x "


def test_code_blocks():
    md = "text\n```py\nprint(1)\n```\nmore\n```\nraw\n"
    assert code_blocks(md) == ["print(1)", "raw"]


def test_launch_builds_the_app_on_the_core_engine(monkeypatch, tmp_path):
    """launch() wires CoreEngine, the store and the config; CoreEngine is faked here."""
    import sys
    import types

    from chord_core.drafters import Speculation
    from chord_tui import launch as launch_mod
    from chord_tui.app import ChordApp
    from fake_engine import FakeEngine

    seen = {}

    def core_engine(**options):  # CoreEngine's constructor: Model.load's options pass through
        seen["options"] = options
        return FakeEngine()

    fake_module = types.ModuleType("chord_tui.core_engine")
    fake_module.CoreEngine = core_engine
    monkeypatch.setitem(sys.modules, "chord_tui.core_engine", fake_module)

    def fake_run(self):
        seen["engine"], seen["model"], seen["store"] = self.engine, self.initial_model, self.store
        self._return_code = 0

    monkeypatch.setattr(ChordApp, "run", fake_run)
    assert launch_mod.launch("gemma-3-270m", {"backend": "numpy"}) == 0
    # no config saved yet, no flags: lookup on, no draft
    assert seen["options"] == {"load_options": {"backend": "numpy"}, "draft": None, "speculation": Speculation()}
    assert isinstance(seen["engine"], FakeEngine) and seen["model"] == "gemma-3-270m"
    assert seen["store"].path.name == "conversations.db"


def test_new_conversation_starts_with_the_configured_system_prompt(state):
    state.default_system_prompt = "default"
    state.open(None)
    assert state.system_prompt == "default"
    gen = state.send("q")
    assert gen.messages[0] == {"role": "system", "content": "default"}
    state.set_system_prompt("changed")
    state.open(None)
    assert state.system_prompt == "default"


async def test_sliders_do_not_change_settings_they_merely_show(tmp_path):
    """A setting between two slider steps keeps its exact value until the user moves the slider."""
    from fake_engine import make_app, settle

    from chord_core.sampling import SamplerSettings
    from chord_tui.config import AppConfig

    config = AppConfig(path=tmp_path / "c.toml", sampler=SamplerSettings(max_tokens=150, temperature=0.33))
    app = make_app(tmp_path, config=config)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        live = app.live_settings.snapshot()
        assert (live.max_tokens, live.temperature) == (150, 0.33)


async def test_single_newlines_in_a_reply_are_line_breaks(tmp_path):
    """A haiku keeps its three lines: the reply's Markdown parser turns single
    newlines into hard breaks (plain Markdown would join the lines)."""
    from fake_engine import FakeEngine, make_app, settle
    from markdown_it import MarkdownIt

    from chord_tui.widgets.message_view import ChatMarkdown

    haiku = "Waves fold into foam\nthe moon pulls the tide away\nsalt stays on the stones"

    def breaks(parser: MarkdownIt) -> int:
        return sum(c.type == "hardbreak" for t in parser.parse(haiku) for c in (t.children or []))

    assert breaks(MarkdownIt("gfm-like")) == 0
    app = make_app(tmp_path, FakeEngine(replies=[haiku]))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.chat.chat_input.text = "haiku please"
        await pilot.press("enter")
        await settle(app, pilot)
        body = app.chat.query(ChatMarkdown).last()
        assert breaks(body._parser_factory()) == 2


def test_the_engines_closing_flush_is_text_not_a_token(tmp_path):
    """TokenEvent id -1 carries held-back text at the end of a reply: it joins
    the text but is not counted or stored as a token."""
    from chord_core.events import TokenEvent
    from chord_tui.conversation_state import ConversationState, Generation
    from chord_tui.storage import ConversationStore

    store = ConversationStore(tmp_path / "c.db")
    conv = store.create("t")
    msg = store.add_message(conv, "assistant", "")
    state = ConversationState(store)
    gen = Generation(id=1, mode="send", message_id=msg, messages=[])
    text, records = state.add_tokens(gen, [TokenEvent(5, "Hi", "Hi", 0.5), TokenEvent(-1, "", "\n", 1.0)])
    assert text == "Hi\n" and len(records) == 1 and records[0][0] == "Hi"
