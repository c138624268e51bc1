"""Tokenizers built from GGUF metadata that match llama.cpp's token ids.

``Tokenizer.from_metadata(gguf.metadata)`` gives ``encode``/``decode``/
``token_to_piece``; ``StreamDecoder`` turns generated ids into text as they
come.
"""

from .stream import StreamDecoder
from .tokenizer import Tokenizer

__all__ = ["StreamDecoder", "Tokenizer"]
