"""The context size is a setting: in the side panel (up to the model's
training context, with the memory its KV cache takes beside it) and in
the config file, applied to the loaded model and to the next load."""

from __future__ import annotations

from fake_engine import KV_BYTES_PER_TOKEN, FakeEngine, make_app, settle
from textual.widgets import Label, Select

from chord_core.model_facts import format_size
from chord_tui.config import AppConfig
from chord_tui.widgets.side_panel import context_choices

SIZE = (140, 44)


def test_choices_run_from_512_to_the_training_context():
    assert context_choices(2048, 2048) == [512, 1024, 2048]
    assert context_choices(32768, 4096) == [512, 1024, 2048, 4096, 8192, 16384, 32768]
    assert context_choices(3000, 1000) == [512, 1000, 1024, 2048, 3000]  # the size in use is always listed


async def test_choosing_a_context_size_applies_it_shows_its_memory_and_keeps_it(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        select = app.chat.query_one("#context-size", Select)
        kv = app.chat.query_one("#kv-memory", Label)
        assert [value for _, value in select._options if isinstance(value, int)] == [512, 1024, 2048]
        assert select.value == 2048
        assert str(kv.render()) == f"KV {format_size(2048 * KV_BYTES_PER_TOKEN)}" == "KV 94.4 MB"
        select.value = 1024
        await settle(app, pilot)
        assert engine.contexts[-1] == 1024 and engine.info.n_ctx == 1024
        assert str(kv.render()) == "KV 47.2 MB"
        assert "/1024" in app.chat.status.text().replace(" ", "")
        assert "ctx 1024" in str(app.chat.query_one("#model-name").render())
        app.save_config()
    assert AppConfig.load(tmp_path / "config.toml").context_size == 1024


async def test_the_saved_context_size_is_used_for_the_next_load(tmp_path):
    engine = FakeEngine()
    config = AppConfig(path=tmp_path / "config.toml", context_size=1024)
    app = make_app(tmp_path, engine, config=config)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert engine.contexts == [1024] and engine.info.n_ctx == 1024
        assert app.chat.query_one("#context-size", Select).value == 1024


async def test_a_model_with_a_longer_training_context_offers_more(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.load_model("gemma-3-270m")  # trained with 32768
        await settle(app, pilot)
        select = app.chat.query_one("#context-size", Select)
        values = [value for _, value in select._options if isinstance(value, int)]
        assert values[-1] == 32768 and select.value == 2048
        select.value = 32768
        await settle(app, pilot)
        assert engine.info.n_ctx == 32768
        assert str(app.chat.query_one("#kv-memory", Label).render()) == f"KV {format_size(32768 * KV_BYTES_PER_TOKEN)}"
