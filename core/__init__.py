"""chord_core: the NumPy inference engine under chord-chat.

It never imports the UI (tests/test_layering.py checks).
"""

from .errors import ChordError, ContextFullError, ModelFormatError, UnsupportedModelError
from .model import Model

__all__ = ["Model", "ChordError", "ModelFormatError", "UnsupportedModelError", "ContextFullError"]
