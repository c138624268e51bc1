"""Byte-level BPE (``tokenizer.ggml.model = gpt2``) text encoding via ``tokenizers``.

llama.cpp splits the text with the pre-type's regexes, maps each word's bytes
to GPT-2's printable byte alphabet, and merges lowest-rank pairs first
(leftmost on ties). Here that is a ``Sequence`` of isolating ``Split``
pre-tokenizers, then ``ByteLevel`` without its own regex, then a BPE model
built from the GGUF vocabulary and merges.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, models, pre_tokenizers

from ..errors import ModelFormatError
from .vocab import Vocab


def _merge_pairs(vocab: Vocab) -> list[tuple[str, str]]:
    tid = vocab.token_to_id
    # The common case, checked in C-speed passes (this is a large part of a
    # BPE model's load): every merge is "a b", a and b non-empty, a + b a token.
    pairs = [m.partition(" ")[::2] for m in vocab.merges]
    if all(map(tid.__contains__, map("".join, pairs))) and all(a and b for a, b in pairs):
        return pairs
    # llama.cpp splits at the first space after the first character, so a
    # merge may start with a space
    split = [(m[:c], m[c + 1:]) for m in vocab.merges if (c := m.find(" ", 1)) > 0]
    # a merge whose result is no token can never be emitted by llama.cpp as
    # one piece; tokenizers refuses such merges (with a Rust panic), so they
    # are left out
    return [(a, b) for a, b in split if a in tid and b in tid and a + b in tid]


_UNKNOWN_BYTE = "\ue000chord-unknown-byte\ue001"  # private-use characters: no vocabulary has it


class BpeEncoder:
    """Encodes one text fragment (no special tokens in it) the way llama.cpp's BPE session does."""

    def __init__(self, vocab: Vocab, path: str = "?"):
        pre = vocab.pre
        assert pre is not None
        # A byte with no token of its own (SmolLM2 has none for 0x13, 0x04, ...)
        # still stands between its neighbours in llama.cpp: it stays a symbol
        # through the merges, so "]" and "|" around it never merge, and is
        # dropped at the end. tokenizers drops such a byte before merging; an
        # unknown-token placeholder outside the vocabulary keeps it in place.
        self._unk_id = len(vocab.token_to_id)
        ids = dict(vocab.token_to_id)
        ids[_UNKNOWN_BYTE] = self._unk_id
        try:
            model = models.BPE(
                vocab=ids,
                merges=_merge_pairs(vocab),
                ignore_merges=pre.ignore_merges,
                unk_token=_UNKNOWN_BYTE,
            )
            tk = Tokenizer(model)
            tk.pre_tokenizer = pre_tokenizers.Sequence(
                [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in pre.regexes]
                + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
            )
        except Exception as e:  # tokenizers raises plain Exception subclasses from Rust
            raise ModelFormatError(f"{path}: BPE vocabulary rejected: {e}") from None
        self._tk = tk

    def encode(self, text: str) -> list[int]:
        ids = self._tk.encode(text, add_special_tokens=False).ids
        if self._unk_id in ids:
            ids = [i for i in ids if i != self._unk_id]
        return ids
