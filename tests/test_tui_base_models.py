"""A base model (no chat template) is marked as one, replies stop at a finite
default limit the side panel shows, and the model the next start opens is
the last *chat* model used."""

from __future__ import annotations

from fake_engine import FakeEngine, make_app, send, settle, wait_until
from textual.widgets import DataTable, Static

from chord_core.model_facts import BASE_MODEL_LABEL
from chord_tui.config import DEFAULT_MAX_TOKENS, AppConfig
from chord_tui.screens.models import COLUMNS, ModelsScreen
from chord_tui.widgets.setting_slider import SettingSlider

SIZE = (140, 44)


async def test_a_base_model_is_marked_in_the_side_panel_and_the_models_table(tmp_path):
    app = make_app(tmp_path, FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        kind = app.chat.query_one("#model-kind", Static)
        assert not kind.display  # smollm2 is a chat model
        app.load_model("gemma-3-270m")
        await settle(app, pilot)
        assert kind.display and str(kind.render()) == BASE_MODEL_LABEL
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        screen = app.screen
        await settle(app, pilot)
        table = screen.query_one(DataTable)
        at = COLUMNS.index("Kind")
        kinds = {table.get_row_at(i)[1]: table.get_row_at(i)[at] for i in range(table.row_count)}
        assert kinds == {"smollm2-135m": "chat", "gemma-3-270m": "base"}
        await pilot.press("down")
        assert BASE_MODEL_LABEL in str(screen.query_one("#model-details", Static).render())


async def test_replies_have_a_finite_default_limit_shown_in_the_side_panel(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        slider = app.chat.query_one("#setting-max-tokens", SettingSlider)
        assert slider.value == DEFAULT_MAX_TOKENS
        assert str(slider.query_one(".setting-value").render()) == str(DEFAULT_MAX_TOKENS)
        await send(app, pilot, "hi")
        await settle(app, pilot)
        assert engine.seen_settings and engine.seen_settings[0].max_tokens == DEFAULT_MAX_TOKENS


async def test_the_next_start_opens_the_last_chat_model_not_a_base_model_tried_once(tmp_path):
    config = AppConfig(path=tmp_path / "config.toml")
    app = make_app(tmp_path, FakeEngine(), config=config)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.load_model("gemma-3-270m")
        await settle(app, pilot)
        assert app.engine.info.name == "gemma-3-270m"
        app.save_config()
    assert AppConfig.load(tmp_path / "config.toml").last_model == "smollm2-135m"
    engine = FakeEngine()
    app = make_app(tmp_path, engine, config=AppConfig.load(tmp_path / "config.toml"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert engine.loads == ["smollm2-135m"]
