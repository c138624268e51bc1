"""``Tokenizer``: text <-> token ids for a GGUF model, matching llama.cpp's
``llama_tokenize`` / ``llama_token_to_piece``.

The steps are llama.cpp's: optional BOS, special tokens carved out of the
text (``partition.py``), each plain fragment encoded by the SentencePiece or
BPE encoder, optional EOS. Pieces are the raw bytes a token stands for, so a
character split over several byte tokens is only whole once they are joined.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ChordError

from .bpe import BpeEncoder
from .partition import SpecialPartitioner
from .spm import SpmEncoder
from .vocab import (
    ATTR_BYTE, ATTR_CONTROL, ATTR_NORMAL, ATTR_UNKNOWN, ATTR_USER_DEFINED, SPM, Vocab, load_vocab,
)

_RAW_TEXT = ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED
_HIDDEN_UNLESS_SPECIAL = ATTR_UNKNOWN | ATTR_CONTROL


def _gpt2_unicode_to_byte() -> dict[str, int]:
    """GPT-2's byte <-> printable character table, reversed: byte-level BPE
    tokens spell each byte as one printable character."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in printable}
    shift = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + shift)] = b
            shift += 1
    return table


_UNICODE_TO_BYTE = _gpt2_unicode_to_byte()


def _bpe_piece(text: str) -> bytes:
    out = bytearray()
    for ch in text:
        b = _UNICODE_TO_BYTE.get(ch)
        if b is not None:
            out.append(b)
        else:  # llama.cpp's marker for a character outside the byte alphabet, verbatim
            out += b"[UNK_BYTE_0x" + ch.encode("utf-8").hex().encode() + text.encode("utf-8") + b"]"
    return bytes(out)


class Tokenizer:
    def __init__(self, vocab: Vocab, path: str = "?"):
        self.vocab = vocab
        self.path = path
        self._spm = vocab.model == SPM
        self._encoder = SpmEncoder(vocab, path) if self._spm else BpeEncoder(vocab, path)
        self._partitioner = SpecialPartitioner(vocab)
        self._pieces: list[bytes | None] = [None] * vocab.n_vocab

    @classmethod
    def from_metadata(cls, metadata: dict, path: str = "?") -> "Tokenizer":
        return cls(load_vocab(metadata, path), path)

    # -- vocabulary ------------------------------------------------------------
    @property
    def n_vocab(self) -> int:
        return self.vocab.n_vocab

    @property
    def id_to_token(self) -> list[str]:
        return self.vocab.tokens

    @property
    def bos_id(self) -> int | None:
        return self.vocab.bos_id

    @property
    def eos_id(self) -> int | None:
        return self.vocab.eos_id

    @property
    def eog_ids(self) -> frozenset[int]:
        """Ids that end generation (llama.cpp's end-of-generation set: EOS, end of turn...)."""
        return self.vocab.eog_ids

    @property
    def add_bos(self) -> bool:
        return self.vocab.add_bos

    def is_control(self, token_id: int) -> bool:
        return bool(self.vocab.attrs[self._check(token_id)] & ATTR_CONTROL)

    def is_eog(self, token_id: int) -> bool:
        return token_id in self.vocab.eog_ids

    def token_id(self, text: str) -> int | None:
        """The id of the token spelled exactly ``text``, if there is one."""
        return self.vocab.token_to_id.get(text)

    def _check(self, token_id: int) -> int:
        if not 0 <= token_id < self.vocab.n_vocab:
            raise ValueError(f"token id {token_id} is outside the vocabulary (0..{self.vocab.n_vocab - 1})")
        return token_id

    # -- encoding --------------------------------------------------------------
    def encode(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:  # lone surrogates: bytes that were not UTF-8 on the way in
            code = ord(text[err.start])
            what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
            raise ChordError(f"text is not valid UTF-8 ({what} at character {err.start})") from None
        v = self.vocab
        out: list[int] = []
        if add_special and v.add_bos:
            out.append(v.bos_id)
        prev_special = True  # SPM: the text after a special token gets the space prefix too
        for part in self._partitioner.split(text, parse_special):
            if isinstance(part, int):
                out.append(part)
                prev_special = True
                continue
            if self._spm and v.add_space_prefix and prev_special:
                part = " " + part
            out.extend(self._encoder.encode(part))
            prev_special = False
        if add_special and v.add_eos:
            out.append(v.eos_id)
        return out

    # -- decoding --------------------------------------------------------------
    def token_to_piece(self, token_id: int) -> bytes:
        """The bytes ``token_id`` stands for, as llama.cpp renders it with special=True."""
        piece = self._pieces[self._check(token_id)]
        if piece is None:
            piece = self._pieces[token_id] = self._make_piece(token_id)
        return piece

    def _make_piece(self, i: int) -> bytes:
        text, attr = self.vocab.tokens[i], int(self.vocab.attrs[i])
        if attr & _RAW_TEXT:
            return text.encode("utf-8")
        if attr & ATTR_NORMAL:
            return text.replace("\u2581", " ").encode("utf-8") if self._spm else _bpe_piece(text)
        if attr & ATTR_BYTE:
            return bytes([int(text[3:5], 16)])
        return b""  # unused / undefined tokens render as nothing

    def piece(self, token_id: int, skip_special: bool = False) -> bytes:
        """``token_to_piece``, or nothing for control/unknown tokens when ``skip_special``."""
        if skip_special and self.vocab.attrs[self._check(token_id)] & _HIDDEN_UNLESS_SPECIAL:
            return b""
        return self.token_to_piece(token_id)

    def decode_bytes(self, ids: Iterable[int], skip_special: bool = False) -> bytes:
        out = bytearray()
        for n, i in enumerate(ids):
            p = self.piece(int(i), skip_special)
            # llama.cpp drops the space its SPM encoder put in front of the text
            if n == 0 and self.vocab.add_space_prefix and p.startswith(b" "):
                p = p[1:]
            out += p
        return bytes(out)

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        return self.decode_bytes(ids, skip_special).decode("utf-8", errors="replace")
