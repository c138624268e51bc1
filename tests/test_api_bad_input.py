"""Bad input to the public API is a ChordError with a one-line message
(docs/api.md#errors: "anything else is a bug"), never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from chord_core import ChatSession, ChordError, Model, SamplerSettings, batch_file, perplexity

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"
FEW = SamplerSettings(temperature=0, max_tokens=2)


@pytest.fixture(scope="module")
def tiny():
    return Model.load(TINY)


CASES = {
    "logits of no tokens": (lambda m, tmp: m.logits([]), "at least one token"),
    "logits of an id past the vocabulary": (lambda m, tmp: m.logits([1, 10**8]), "100000000"),
    "logits of a negative id": (lambda m, tmp: m.logits([-1]), "-1"),
    "detokenize an id past the vocabulary": (lambda m, tmp: m.detokenize([10**8]), "100000000"),
    "tokenize bytes": (lambda m, tmp: m.tokenize(b"hi"), "bytes"),
    "perplexity of a text shorter than n_ctx": (lambda m, tmp: perplexity(m, "short", n_ctx=64), "at least 64 tokens"),
    "chat with a string for messages": (lambda m, tmp: ChatSession(m).chat("hi", FEW).text, "messages"),
    "chat with no messages": (lambda m, tmp: ChatSession(m).chat([], FEW).text, "messages"),
    "chat with a dict for settings": (lambda m, tmp: ChatSession(m).chat([{"role": "user", "content": "hi"}],
                                                                           {"max_tokens": 2}).text, "dict"),
    "completion of a list": (lambda m, tmp: ChatSession(m).completion(["a"], FEW).text, "list"),
    "completion of nothing": (lambda m, tmp: ChatSession(m).completion("", FEW).text, "empty"),
    "batch_file of a missing input": (lambda m, tmp: batch_file(m, tmp / "none.jsonl", tmp / "out.jsonl"),
                                      "none.jsonl"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_to_the_public_api_is_a_one_line_chord_error(tiny, tmp_path, case):
    call, says = CASES[case]
    with pytest.raises(ChordError) as caught:
        call(tiny, tmp_path)
    message = str(caught.value)
    assert "\n" not in message and says in message, message
    assert "engine error" not in message  # the label of a bug caught late, not of bad input
