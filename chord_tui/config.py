"""The App's settings, kept in a TOML file the user may also edit by hand.

Loading never fails: a missing file gives the defaults; an unreadable one
gives the defaults, a copy of it beside it (``config.toml.bad``) so the
user's text survives the next save, and a ``warning`` for the App to show; a
single bad value falls back to its default alone. Saving writes a temporary
file and renames it over the old one, so a crash mid-save leaves either the
old file or the new one, never half of each.

The standard library reads TOML but cannot write it, and the file is flat,
so a small writer lives here. TOML has no null: a ``None`` is left out and
reads back as the field's default (``None`` for every such field but the
reply limit, whose "no limit" is written as ``max_tokens = 0``).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chord_core.atomic_file import atomic_write_text
from chord_core.drafters import DEFAULT_LOOKUP, Speculation
from chord_core.sampling import SamplerSettings

DEFAULT_THEME = "textual-dark"
# A reply stops here unless the model ends its turn first: a base model may
# never end one (llama.cpp and Ollama stop only on end-of-turn). Side panel: 0 = no limit.
DEFAULT_MAX_TOKENS = 1024
NO_LIMIT = 0  # max_tokens in the file for "no limit" (TOML has no null)
MIN_CONTEXT = 16  # room for a prompt and a reply, as the CLI's --ctx

# name -> the types a value read from the file may have
_TOP_LEVEL_TYPES: dict[str, tuple[type, ...]] = {
    "system_prompt": (str,),
    "side_panel_visible": (bool,),
    "inspector": (bool,),
    "last_model": (str,),
    "theme": (str,),
    "context_size": (int,),
    "lookup": (bool,),
    "draft_model": (str,),
}


def default_sampler() -> SamplerSettings:
    return SamplerSettings(max_tokens=DEFAULT_MAX_TOKENS)


@dataclass
class AppConfig:
    sampler: SamplerSettings = field(default_factory=default_sampler)
    system_prompt: str = ""  # for new conversations
    side_panel_visible: bool = True
    inspector: bool = False
    last_model: str | None = None
    theme: str = DEFAULT_THEME
    context_size: int | None = None  # None: the model's default (its training context, at most 4096)
    lookup: bool = True  # prompt lookup, as the side panel's switch last left it
    draft_model: str | None = None  # the side panel's draft model (a library name), None: none
    # Not saved: what went wrong while loading, for the App to show once.
    warning: str | None = field(default=None, compare=False)
    # Not saved: the file this was loaded from, where save() writes by default.
    path: Path | None = field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, path: str | Path | None = None) -> AppConfig:
        path = _resolve(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path=path)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            kept = _keep_broken_copy(path)
            where = f"; your file was copied to {kept}" if kept else ""
            return cls(path=path, warning=f"Could not read {path} ({e}); using default settings{where}.")
        config, problems = cls._from_dict(data)
        config.path = path
        if problems:
            config.warning = f"Ignored invalid settings in {path}: " + "; ".join(problems) + "."
        return config

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> tuple[AppConfig, list[str]]:
        problems: list[str] = []
        values: dict[str, Any] = {}
        for name, types in _TOP_LEVEL_TYPES.items():
            if name not in data:
                continue
            value = data[name]
            if name == "context_size" and (isinstance(value, bool) or not isinstance(value, int)
                                           or value < MIN_CONTEXT):
                problems.append(f"{name} = {value!r} (a whole number of tokens, at least {MIN_CONTEXT})")
            elif isinstance(value, types):
                values[name] = value
            else:
                problems.append(f"{name} = {value!r}")
        sampler = default_sampler()
        raw_sampler = data.get("sampler", {})
        if not isinstance(raw_sampler, dict):
            problems.append(f"sampler = {raw_sampler!r}")
            raw_sampler = {}
        # One key at a time, so a single bad value keeps the others.
        for key, value in raw_sampler.items():
            if key == "max_tokens" and value == NO_LIMIT and not isinstance(value, bool):
                value = None
            try:
                sampler = sampler.replace(**{key: value})
            except Exception as e:  # noqa: BLE001 - any bad value means "use the default"
                problems.append(f"sampler.{key} = {value!r} ({e})")
        return cls(sampler=sampler, **values), problems

    def to_dict(self) -> dict[str, Any]:
        """What save() writes: the settings without load-time state."""
        data = {name: getattr(self, name) for name in _TOP_LEVEL_TYPES}
        data["sampler"] = self.sampler.to_dict()
        if data["sampler"]["max_tokens"] is None:
            data["sampler"]["max_tokens"] = NO_LIMIT
        return data

    def save(self, path: str | Path | None = None) -> Path:
        """Write atomically to ``path``, else where this was loaded from, else the default file."""
        target = Path(path) if path is not None else (self.path or _resolve(None))
        text = "# chord-chat settings\n" + _toml(self.to_dict())
        atomic_write_text(target, text)
        self.path = target
        return target

    def replace(self, **changes: Any) -> AppConfig:
        return dataclasses.replace(self, **changes)

    def speculation_at_start(self, speculation: Speculation | None, draft: str | None,
                             lookup_given: bool) -> tuple[Speculation, str | None]:
        """What the engine starts with: the command line's choices where it made
        them (``lookup_given``: --lookup/--no-lookup; ``draft``: --draft), else
        the ones saved from the side panel."""
        spec = speculation or Speculation()
        lookup = spec.lookup if lookup_given else (DEFAULT_LOOKUP if self.lookup else 0)
        return Speculation(lookup=lookup, draft_max=spec.draft_max), draft if draft is not None else self.draft_model


def _resolve(path: str | Path | None) -> Path:
    if path is not None:
        return Path(path)
    from chord_core.locations import config_file_path

    return config_file_path()


def _keep_broken_copy(path: Path) -> Path | None:
    copy = path.with_name(path.name + ".bad")
    try:
        shutil.copyfile(path, copy)
    except OSError:
        return None
    return copy


# -- a TOML writer for flat tables of scalars and lists ------------------------

def _toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif value is not None:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for name, table in tables:
        lines.append(f"\n[{_toml_key(name)}]")
        for key, value in table.items():
            if isinstance(value, dict):
                raise TypeError(f"nested table {name}.{key} is not supported")
            if value is not None:
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # always has "." or an exponent, so it reads back as a float
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'
