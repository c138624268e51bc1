"""Tokenizer fuzzing, the CI slice: hostile Unicode (combining marks, RTL,
emoji ZWJ sequences, NUL, 100,000-character runs, invalid UTF-8 read from
files, escaped lone surrogates) through both real models' tokenizers.
No exception but the one-line ChordError for text that is not UTF-8, and
``detokenize(tokenize(s)) == s`` wherever llama.cpp round-trips the same
string (tests/tokenizer_fuzz.py; scripts/fuzz_tokenizer.py checks that
rule, and the token ids, against llama.cpp itself)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from tokenizer_fuzz import has_surrogate, hostile_texts, llama_cpp_round_trips

from chord_core.errors import ChordError
from chord_core.gguf_file import GGUFFile
from chord_core.tokenizer import Tokenizer

FUZZ = settings(max_examples=150, derandomize=True, database=None, deadline=timedelta(seconds=10),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module", params=["smollm2", "gemma3"])
def tokenizer(request) -> Tokenizer:
    path = request.getfixturevalue("smollm_path" if request.param == "smollm2" else "gemma_path")
    with GGUFFile(path) as gguf:
        return Tokenizer.from_metadata(dict(gguf.metadata), path=str(path))


def _is_spm(tokenizer: Tokenizer) -> bool:
    return tokenizer.vocab.model == "llama"


@FUZZ
@given(text=hostile_texts())
def test_hostile_text_round_trips_where_llama_cpp_does(tokenizer, text):
    if has_surrogate(text):
        with pytest.raises(ChordError, match=r"^text is not valid UTF-8 \(.+ at character \d+\)$"):
            tokenizer.encode(text, add_special=False)
        return
    ids = tokenizer.encode(text, add_special=False)
    assert all(0 <= i < tokenizer.n_vocab for i in ids)
    back = tokenizer.decode(ids)
    if llama_cpp_round_trips(text, _is_spm(tokenizer)):
        assert back == text


@FUZZ
@given(text=hostile_texts())
def test_hostile_text_with_special_tokens_parsed_never_raises_but_chord_error(tokenizer, text):
    try:
        ids = tokenizer.encode(text, add_special=True, parse_special=True)
    except ChordError as err:
        assert has_surrogate(text) and "\n" not in str(err)
        return
    tokenizer.decode(ids, skip_special=True)
    tokenizer.decode(ids)
