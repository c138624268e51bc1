"""The sampling settings in the side panel: sliders, the seed field, refused values."""

from __future__ import annotations

from fake_engine import FakeEngine, make_app, send, settle, start
from textual.widgets import Input

from chord_core.sampling import SamplerSettings
from chord_tui.config import AppConfig
from chord_tui.widgets.setting_slider import SettingSlider

SIZE = (120, 40)


async def test_top_k_slider_at_off_means_no_top_k_not_a_crash(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        setting = app.chat.query_one("#setting-top-k", SettingSlider)
        setting.slider.focus()
        for _ in range(45):  # 40 -> 0, the "off" end
            await pilot.press("left")
        await pilot.pause()
        assert app.is_running
        assert app.live_settings.snapshot().top_k == 0
        assert str(setting.query_one(".setting-value").render()) == "off"


async def test_the_seed_field_takes_digits_only(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.chat.query_one("#seed", Input).focus()
        await pilot.press("-", "5")
        await pilot.pause()
        assert app.is_running
        assert app.chat.query_one("#seed", Input).value == "5"
        assert app.live_settings.snapshot().seed == 5


async def test_a_refused_setting_is_reported_not_fatal(tmp_path):
    from chord_tui.messages import SettingChanged

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.post_message(SettingChanged("top_k", None))  # what the slider sent for "off" before
        await pilot.pause()
        assert app.is_running
        assert any("top_k" in n.message for n in app._notifications)


async def test_sliders_show_the_configured_value_even_off_their_steps(tmp_path):
    settings = SamplerSettings(top_k=250, max_tokens=20, temperature=0.33)
    config = AppConfig(path=tmp_path / "config.toml", sampler=settings)
    app = make_app(tmp_path, config=config)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        shown = {key: str(app.chat.query_one(f"#setting-{key}", SettingSlider).query_one(".setting-value").render())
                 for key in ("top-k", "max-tokens", "temperature")}
        assert shown == {"top-k": "250", "max-tokens": "20", "temperature": "0.33"}
        assert app.live_settings.snapshot() == settings


async def test_regenerate_with_a_fixed_seed_says_why_the_reply_repeats(tmp_path):
    app = make_app(tmp_path, FakeEngine(replies=["same", "same"]))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.chat.query_one("#seed", Input).focus()
        await pilot.press("7")
        await send(app, pilot, "q")
        await settle(app, pilot)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert any("seed is fixed at 7" in n.message for n in app._notifications)
