"""AppConfig: round trips through the file, and never crashes on a bad one."""

from __future__ import annotations

import tomllib

import pytest

from chord_core import locations
from chord_core.sampling import SamplerSettings
from chord_tui.config import AppConfig


def custom_config() -> AppConfig:
    return AppConfig(
        sampler=SamplerSettings(temperature=0.3, top_k=12, top_p=0.9, min_p=0.0, seed=1234,
                                max_tokens=256, stop=("</s>", "User:")),
        system_prompt='Line one\nLine "two"\twith tab and \\ backslash, \x01 control, ünïcode',
        side_panel_visible=False,
        inspector=True,
        last_model="gemma-3-270m",
        theme="nord",
    )


def test_missing_file_gives_defaults_without_warning(tmp_path):
    cfg = AppConfig.load(tmp_path / "nope.toml")
    assert cfg == AppConfig()
    assert cfg.warning is None
    assert not (tmp_path / "nope.toml").exists()


def test_round_trip(tmp_path):
    path = tmp_path / "config.toml"
    original = custom_config()
    original.save(path)
    loaded = AppConfig.load(path)
    assert loaded == original
    assert loaded.warning is None
    assert loaded.sampler.stop == ("</s>", "User:")


def test_file_is_valid_toml_with_expected_values(tmp_path):
    path = tmp_path / "config.toml"
    custom_config().save(path)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["theme"] == "nord"
    assert data["inspector"] is True and data["side_panel_visible"] is False
    assert data["system_prompt"] == custom_config().system_prompt
    assert data["sampler"]["temperature"] == 0.3 and data["sampler"]["top_k"] == 12
    assert data["sampler"]["stop"] == ["</s>", "User:"]


def test_none_values_are_left_out_and_read_back_as_none(tmp_path):
    path = tmp_path / "config.toml"
    AppConfig(last_model=None, sampler=SamplerSettings(seed=None, max_tokens=None)).save(path)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert "last_model" not in data and "seed" not in data["sampler"]
    loaded = AppConfig.load(path)
    assert loaded.last_model is None and loaded.sampler.seed is None and loaded.sampler.max_tokens is None


def test_default_path_is_under_chord_home(tmp_path, monkeypatch):
    # A home of its own, so the session's shared config stays at defaults for other tests.
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))
    cfg = custom_config()
    written = cfg.save()
    assert written == locations.config_file_path()
    assert written.is_relative_to(tmp_path / "home")
    assert AppConfig.load() == cfg


def test_save_without_path_goes_back_where_it_was_loaded_from(tmp_path):
    path = tmp_path / "elsewhere.toml"
    AppConfig().save(path)
    cfg = AppConfig.load(path)
    cfg.theme = "gruvbox"
    assert cfg.save() == path
    assert AppConfig.load(path).theme == "gruvbox"


def test_save_replaces_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "config.toml"
    AppConfig(theme="a").save(path)
    AppConfig(theme="b").save(path)
    assert AppConfig.load(path).theme == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_failed_save_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    AppConfig(theme="old").save(path)

    def broken_replace(src, dst):
        raise OSError("disk full")

    import chord_core.atomic_file as atomic_file

    monkeypatch.setattr(atomic_file.os, "replace", broken_replace)
    with pytest.raises(OSError):
        AppConfig(theme="new").save(path)
    monkeypatch.undo()
    assert AppConfig.load(path).theme == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


@pytest.mark.parametrize(
    "content",
    [b"this is = = not toml [[[", b"\xff\xfe\x00garbage", b'theme = "unterminated'],
    ids=["syntax", "binary", "unterminated"],
)
def test_corrupt_file_gives_defaults_warning_and_a_kept_copy(tmp_path, content):
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    cfg = AppConfig.load(path)
    assert cfg == AppConfig()
    assert cfg.warning and str(path) in cfg.warning
    assert (tmp_path / "config.toml.bad").read_bytes() == content
    cfg.save()  # the App saves later; the user's broken text is still in .bad
    assert AppConfig.load(path).warning is None
    assert (tmp_path / "config.toml.bad").read_bytes() == content


def test_bad_values_fall_back_one_by_one(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        'theme = 42\n'
        'inspector = "yes"\n'
        'last_model = "smollm"\n'
        'side_panel_visible = false\n'
        'future_option = 1\n'
        '[sampler]\n'
        'temperature = "hot"\n'
        'top_p = 7.0\n'
        'top_k = 5\n'
        'no_such_knob = 1\n',
        encoding="utf-8",
    )
    cfg = AppConfig.load(path)
    assert (cfg.theme, cfg.inspector) == (AppConfig().theme, AppConfig().inspector)
    assert (cfg.last_model, cfg.side_panel_visible) == ("smollm", False)
    defaults = SamplerSettings()
    assert (cfg.sampler.temperature, cfg.sampler.top_p) == (defaults.temperature, defaults.top_p)
    assert cfg.sampler.top_k == 5
    for bad in ("theme", "inspector", "sampler.temperature", "sampler.top_p", "sampler.no_such_knob"):
        assert bad in cfg.warning
    assert "future_option" not in cfg.warning  # unknown top-level keys: a newer version's, ignored


def test_sampler_that_is_not_a_table(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('sampler = "fast"\ntheme = "nord"\n', encoding="utf-8")
    cfg = AppConfig.load(path)
    assert cfg.sampler == AppConfig().sampler and cfg.theme == "nord"
    assert "sampler" in cfg.warning


def test_warning_and_path_are_not_saved(tmp_path):
    path = tmp_path / "config.toml"
    AppConfig(warning="something", path=tmp_path / "x").save(path)
    text = path.read_text(encoding="utf-8")
    assert "something" not in text and "path" not in tomllib.loads(text)


def test_replies_have_a_finite_default_limit_and_no_limit_survives_a_save(tmp_path):
    from chord_tui.config import DEFAULT_MAX_TOKENS

    assert AppConfig().sampler.max_tokens == DEFAULT_MAX_TOKENS
    path = tmp_path / "config.toml"
    AppConfig(sampler=SamplerSettings(max_tokens=None)).save(path)
    assert tomllib.loads(path.read_text(encoding="utf-8"))["sampler"]["max_tokens"] == 0
    assert AppConfig.load(path).sampler.max_tokens is None  # "no limit", not the default limit


def test_context_size_round_trips_and_a_bad_one_is_named(tmp_path):
    path = tmp_path / "config.toml"
    AppConfig(context_size=8192).save(path)
    assert AppConfig.load(path).context_size == 8192
    assert AppConfig.load(tmp_path / "missing.toml").context_size is None  # the model's default
    for bad in ("8", "true", '"big"'):
        path.write_text(f"context_size = {bad}\n", encoding="utf-8")
        cfg = AppConfig.load(path)
        assert cfg.context_size is None and f"context_size = " in cfg.warning


def test_the_side_panels_speculation_round_trips_and_the_command_line_wins_at_start(tmp_path):
    from chord_core.drafters import DEFAULT_LOOKUP, Speculation

    path = tmp_path / "config.toml"
    AppConfig(lookup=False, draft_model="smollm2-tiny-draft").save(path)
    saved = AppConfig.load(path)
    assert (saved.lookup, saved.draft_model) == (False, "smollm2-tiny-draft")
    # nothing on the command line: the saved choices
    assert saved.speculation_at_start(Speculation(draft_max=6), None, lookup_given=False) == (
        Speculation(lookup=0, draft_max=6), "smollm2-tiny-draft")
    # --lookup 3 --draft other: the command line's
    assert saved.speculation_at_start(Speculation(lookup=3), "other", lookup_given=True) == (
        Speculation(lookup=3), "other")
    assert AppConfig().speculation_at_start(None, None, lookup_given=False) == (
        Speculation(lookup=DEFAULT_LOOKUP), None)
