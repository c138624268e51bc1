"""``StreamDecoder``: token ids in, text out, one token at a time.

A character can be spread over several tokens (byte tokens, or byte-level
BPE pieces that end mid-character), so the bytes of an unfinished UTF-8
sequence are held back until the token that completes it arrives. Bytes that
can never form a character come out as U+FFFD, so the text returned is
always valid.
"""

from __future__ import annotations

import codecs

from .tokenizer import Tokenizer


class StreamDecoder:
    def __init__(self, tokenizer: Tokenizer, skip_special: bool = False):
        self._tok = tokenizer
        self._skip_special = skip_special
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        """The text completed by ``token_id`` (possibly empty)."""
        return self._utf8.decode(self._tok.piece(int(token_id), self._skip_special))

    def flush(self) -> str:
        """Whatever is still held back (an unfinished sequence becomes U+FFFD); then start afresh."""
        text = self._utf8.decode(b"", final=True)
        self._utf8.reset()
        return text
