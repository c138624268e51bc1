"""Carving special tokens out of text, as llama.cpp's ``tokenizer_st_partition``.

The special tokens are taken one at a time, longest text first; each one is
cut out of every stretch of plain text left so far, at every occurrence.
That order matters: it is not the same as scanning left to right for the
longest match (with tokens "bcd" and "ab", "abcd" gives "a" + "bcd").
User-defined tokens are always carved out; control and unknown tokens only
when the caller asks for special tokens to be parsed.
"""

from __future__ import annotations

from .vocab import ATTR_CONTROL, ATTR_LSTRIP, ATTR_RSTRIP, ATTR_UNKNOWN, Vocab

_ASCII_SPACE = " \t\n\v\f\r"  # C isspace() in the "C" locale


class SpecialPartitioner:
    def __init__(self, vocab: Vocab):
        self._vocab = vocab
        # Grouped by first character so that a text is only searched for
        # tokens that could occur in it (Gemma has over 6,000 of them).
        self._by_first: dict[str, list[int]] = {}
        self._rank: dict[int, int] = {}
        for rank, i in enumerate(vocab.special_ids):
            self._by_first.setdefault(vocab.tokens[i][0], []).append(i)
            self._rank[i] = rank

    def split(self, text: str, parse_special: bool) -> list[str | int]:
        """``text`` as a list of plain-text fragments (str) and token ids (int)."""
        if not text:
            return []
        tokens, attrs = self._vocab.tokens, self._vocab.attrs
        skip = ATTR_CONTROL | ATTR_UNKNOWN
        candidates = []
        for ch in set(text) & self._by_first.keys():
            for i in self._by_first[ch]:
                if (parse_special or not attrs[i] & skip) and tokens[i] in text:
                    candidates.append(i)
        candidates.sort(key=self._rank.__getitem__)

        parts: list[str | int] = [text]
        for tid in candidates:
            tok, attr = tokens[tid], int(attrs[tid])
            out: list[str | int] = []
            for frag in parts:
                if isinstance(frag, int) or tok not in frag:
                    out.append(frag)
                else:
                    out.extend(_cut(frag, tok, tid, attr))
            parts = out
        return parts


def _cut(frag: str, tok: str, tid: int, attr: int) -> list[str | int]:
    out: list[str | int] = []
    pos = 0
    while True:
        at = frag.find(tok, pos)
        if at < 0:
            rest = frag[pos:]
            if rest:
                out.append(rest)
            return out
        left = frag[pos:at]
        if attr & ATTR_LSTRIP:
            left = left.rstrip(_ASCII_SPACE)
        if left:
            out.append(left)
        out.append(tid)
        pos = at + len(tok)
        if attr & ATTR_RSTRIP:
            while pos < len(frag) and frag[pos] in _ASCII_SPACE:
                pos += 1
