"""Errors the engine raises on bad input.

Every error is one line that names the file, tensor, key or value at fault,
so the CLI and the TUI can show ``str(err)`` as is, without a traceback.
"""


class ChordError(Exception):
    """Base for every error meant to be shown to a user as one line."""

    def __str__(self) -> str:  # keep it on one line whatever the caller passed
        return " ".join(super().__str__().split())


class ModelFormatError(ChordError):
    """The file is not a GGUF we can read (magic, version, truncation, counts)."""


class UnsupportedModelError(ChordError):
    """A well-formed GGUF asks for an architecture or quant type we do not run."""


class ContextFullError(ChordError):
    """The KV cache has no room for the tokens asked for."""


class ModelTooLargeError(ChordError):
    """The model, its KV cache and scratch would not fit in the memory available."""
