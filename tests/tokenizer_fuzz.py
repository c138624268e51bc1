"""Hostile text for tokenizer fuzzing, shared by the CI slice
(tests/test_tokenizer_fuzz.py) and the campaign beside llama.cpp
(scripts/fuzz_tokenizer.py).

Where llama.cpp itself does not round-trip ``detokenize(tokenize(s)) == s``
(measured over every code point, between two letters, with llama-cpp-python
0.3.36): SmolLM2's byte-level BPE has no token for the bytes 0x04, 0x06,
0x13, 0x14, 0x16, 0x1D, 0xF1 and 0xF2, so it drops those six control
characters and garbles U+40000-U+BFFFF (planes 4-11, all unassigned, led
by 0xF1 or 0xF2 in UTF-8); Gemma's SPM turns U+2581, its own space marker,
into a space.
Everywhere else both round-trip, and so must chord.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

BPE_LOST_CONTROLS = frozenset("\x04\x06\x13\x14\x16\x1d")
SPM_SPACE_MARKER = "\u2581"

COMBINING = st.characters(categories=("Mn", "Me"))
RTL = st.sampled_from(list("\u05d0\u05e9\u0627\u0644\u0639\u0631\u0628\u064a\u0629\u200f\u202b\u202e\u2067"))
EMOJI_ZWJ = st.sampled_from(["\U0001F469\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466",
                             "\U0001F3F3\ufe0f\u200d\U0001F308", "\U0001F468\U0001F3FD\u200d\U0001F4BB",
                             "\U0001F1EB\U0001F1F7", "\u2764\ufe0f", "\U0001F44D\U0001F3FF"])
ANY_CHAR = st.characters(exclude_categories=("Cs",))


def _runs(draw_char: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One character repeated up to 100,000 times."""
    return st.builds(lambda c, n: c * n, draw_char, st.sampled_from([2, 17, 1000, 100_000]))


def _from_bytes(errors: str) -> st.SearchStrategy[str]:
    """Text as read from a file that is not UTF-8: with "replace" (U+FFFD), or
    "surrogateescape" (lone surrogates: how Python reads undecodable stdin)."""
    return st.binary(max_size=64).map(lambda b: b.decode("utf-8", errors))


def _escaped_surrogates() -> st.SearchStrategy[str]:
    """A JSON body with an escaped lone surrogate, as a client may send: decodes to a lone surrogate."""
    return st.builds(lambda a, u, b: json.loads(json.dumps(a)[:-1] + f"\\u{u:04x}" + json.dumps(b)[1:]),
                     st.text(max_size=8), st.integers(0xD800, 0xDFFF), st.text(max_size=8))


def hostile_texts() -> st.SearchStrategy[str]:
    mixed = st.lists(st.one_of(ANY_CHAR, COMBINING, RTL, EMOJI_ZWJ, st.just("\x00"), st.just(" "),
                               st.just("\n"), st.sampled_from(["<|im_start|>", "<bos>", "<end_of_turn>"])),
                     max_size=40).map("".join)
    return st.one_of(st.text(ANY_CHAR, max_size=60), mixed, _runs(st.one_of(ANY_CHAR, EMOJI_ZWJ, COMBINING)),
                     _from_bytes("replace"), _from_bytes("surrogateescape"), _escaped_surrogates(),
                     st.just(""), st.just("\\ud800 \\udfff"))


def has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def llama_cpp_round_trips(text: str, spm: bool) -> bool:
    """Whether llama.cpp gives ``text`` back from its own tokens (see the module's docstring)."""
    if has_surrogate(text):
        return False  # not UTF-8: neither tokenizer takes it
    if spm:
        return SPM_SPACE_MARKER not in text
    return not any(c in BPE_LOST_CONTROLS or 0x40000 <= ord(c) <= 0xBFFFF for c in text)
