"""Helpers shared by the engine's CLI verbs."""

from __future__ import annotations

from ..library import resolve_model
from ..model import Model


def add_model_arg(p) -> None:
    p.add_argument("model", help="library name or path to a .gguf file")


def load_model(spec: str) -> Model:
    return Model.load(resolve_model(spec))
