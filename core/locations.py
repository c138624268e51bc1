"""Where chord-chat keeps its files: the one place that knows the directories.

By default the per-OS user directories from platformdirs (for example
``~/.local/share/chord-chat`` and ``~/.config/chord-chat`` on Linux,
``~/Library/Application Support/chord-chat`` on macOS,
``%LOCALAPPDATA%\\chord-chat`` on Windows). If the ``CHORD_HOME`` environment
variable is set, everything lives under it instead, which is how tests and
portable installs keep away from the real home directory.

The variable is read on every call, not once at import, so a test that
changes it sees the new directories at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_dir, user_data_dir

from .errors import ChordError

APP_NAME = "chord-chat"
HOME_ENV = "CHORD_HOME"


def _ensure(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        hint = f" (check {HOME_ENV}={os.environ[HOME_ENV]})" if os.environ.get(HOME_ENV) else ""
        raise ChordError(f"{directory}: cannot create this directory: {err.strerror or err}{hint}") from None
    return directory


def _home_override() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    home = _home_override()
    if home is not None:
        return _ensure(home / "data")
    return _ensure(Path(user_data_dir(APP_NAME, appauthor=False)))


def config_dir() -> Path:
    home = _home_override()
    if home is not None:
        return _ensure(home / "config")
    return _ensure(Path(user_config_dir(APP_NAME, appauthor=False)))


def models_dir() -> Path:
    return _ensure(data_dir() / "models")


def conversations_db_path() -> Path:
    return data_dir() / "conversations.db"


def config_file_path() -> Path:
    return config_dir() / "config.toml"
