"""SentencePiece (``tokenizer.ggml.model = llama``) text encoding via ``sentencepiece``.

llama.cpp's SPM tokenizer merges the adjacent pair whose concatenation is a
token with the highest score, leftmost first, and spells out pieces that are
no token as byte tokens; that is sentencepiece's BPE with byte fallback. One
difference matters: llama.cpp may merge into *any* token (control,
user-defined, unused), sentencepiece only into normal ones. So every piece
is written as normal except the byte pieces and the one unknown piece
sentencepiece insists on. User-defined tokens never reach this encoder:
``partition.py`` has carved them out of the text already, as llama.cpp does.

The ModelProto is serialized by hand (protobuf wire format, vectorized with
NumPy) because building it with the protobuf package, or even with a Python
loop per piece, costs too long for Gemma's 262,144 pieces.
"""

from __future__ import annotations

import numpy as np
import sentencepiece

from ..errors import ModelFormatError
from .vocab import ATTR_BYTE, Vocab

# ModelProto.SentencePiece.Type
_NORMAL, _UNKNOWN, _BYTE = 1, 2, 6
# TrainerSpec.ModelType
_BPE = 2
_BYTE_PIECES = [f"<0x{b:02X}>" for b in range(256)]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field_varint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _field_bytes(field: int, value: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(value)) + value


def _varint_len(v: np.ndarray) -> np.ndarray:
    n = np.ones_like(v)
    for k in (7, 14, 21, 28):
        n += v >= (1 << k)
    return n


def _put_varints(out: np.ndarray, pos: np.ndarray, v: np.ndarray, vlen: np.ndarray) -> None:
    for k in range(int(vlen.max())):
        m = vlen > k
        byte = (v[m] >> (7 * k)) & 0x7F
        byte |= np.where(vlen[m] > k + 1, 0x80, 0)
        out[pos[m] + k] = byte


def serialize_pieces(pieces: list[str], scores: np.ndarray, types: np.ndarray) -> bytes:
    """The repeated ``pieces`` field (1) of a ModelProto: piece (1), score (2), type (3)."""
    joined = "".join(pieces)
    blob = np.frombuffer(joined.encode("utf-8"), np.uint8)
    # UTF-8 byte length of each piece without a Python loop: bytes per code
    # point, summed over each piece's span of code points
    cp = np.frombuffer(joined.encode("utf-32-le"), np.uint32)
    per_cp = 1 + (cp >= 0x80).astype(np.int64) + (cp >= 0x800) + (cp >= 0x10000)
    n_cp = np.fromiter(map(len, pieces), np.int64, len(pieces))
    if n_cp.min() <= 0:
        raise ValueError("empty piece")
    L = np.add.reduceat(per_cp, np.cumsum(n_cp) - n_cp)
    vL = _varint_len(L)
    M = 1 + vL + L + 5 + 2  # piece tag+len+bytes, score tag+fixed32, type tag+varint (< 128)
    vM = _varint_len(M)
    R = 1 + vM + M
    start = np.cumsum(R) - R
    out = np.empty(int(R.sum()), np.uint8)
    out[start] = 0x0A  # field 1, length-delimited
    _put_varints(out, start + 1, M, vM)
    p = start + 1 + vM
    out[p] = 0x0A
    _put_varints(out, p + 1, L, vL)
    q = p + 1 + vL  # first byte of the piece text
    src_start = np.cumsum(L) - L
    # each text byte moves by its piece's offset; int32 halves the index traffic
    shift = np.repeat((q - src_start).astype(np.int32), L)
    shift += np.arange(len(blob), dtype=np.int32)
    out[shift] = blob
    r = q + L
    out[r] = 0x15  # field 2, fixed32
    sb = np.ascontiguousarray(scores, dtype="<f4").view(np.uint8).reshape(-1, 4)
    for j in range(4):
        out[r + 1 + j] = sb[:, j]
    out[r + 5] = 0x18  # field 3, varint
    out[r + 6] = types
    return out.tobytes()


def build_model_proto(vocab: Vocab) -> bytes:
    n = vocab.n_vocab
    types = np.full(n, _NORMAL, np.uint8)
    byte_ids = [vocab.token_to_id.get(p) for p in _BYTE_PIECES]
    byte_fallback = all(i is not None and vocab.attrs[i] & ATTR_BYTE for i in byte_ids)
    if byte_fallback:
        types[byte_ids] = _BYTE
    unk = vocab.unk_id if vocab.unk_id is not None else 0
    types[unk] = _UNKNOWN
    trainer = (_field_varint(3, _BPE) + _field_varint(35, int(byte_fallback))
               + _field_varint(40, unk) + _field_varint(41, vocab.bos_id if vocab.bos_id is not None else -1 & 0xFFFFFFFF)
               + _field_varint(42, vocab.eos_id if vocab.eos_id is not None else -1 & 0xFFFFFFFF))
    # identity normalizer: llama.cpp escapes spaces itself and normalizes nothing
    normalizer = (_field_bytes(1, b"identity") + _field_varint(3, 0) + _field_varint(4, 0)
                  + _field_varint(5, 0))
    return (serialize_pieces(vocab.tokens, vocab.scores, types)
            + _field_bytes(2, trainer) + _field_bytes(3, normalizer))


class SpmEncoder:
    """Encodes one text fragment (no special tokens in it) the way llama.cpp's SPM session does."""

    def __init__(self, vocab: Vocab, path: str = "?"):
        self._sp = sentencepiece.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(build_model_proto(vocab))
        except (RuntimeError, OSError) as e:
            raise ModelFormatError(f"{path}: SentencePiece vocabulary rejected: {e}") from None

    def encode(self, text: str) -> list[int]:
        # llama.cpp writes every space as U+2581 before merging
        return self._sp.encode(text.replace(" ", "\u2581"))
