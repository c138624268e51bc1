"""Prompt lookup follows a copy across the reply's edits, sizes its drafts by
how often its guesses hold, and leaves greedy replies exactly as they were."""

from __future__ import annotations

import pytest

from chord_core.drafters import OFF, Speculation
from chord_core.events import Done
from chord_core.model import Model
from chord_core.prompt_lookup import PromptLookup, best_length
from chord_core.sampling import SamplerSettings
from chord_core.session import ChatSession

SOURCE = list(range(100, 190))  # the text the reply copies: no token twice, so no chance matches
PROMPT = [1, 2, *SOURCE, 3, 4]


def _replay(reply: list[int], k: int = 16) -> dict[int, list[int]]:
    """Drive a lookup as the generator does at temperature 0: a check keeps
    the guesses that match ``reply`` and the reply's token after them. The
    guesses made with the context through ``reply[i - 1]``, by i."""
    lookup = PromptLookup()
    drafts: dict[int, list[int]] = {}
    i = 1
    while i < len(reply):
        guesses = [d.id for d in lookup.propose(PROMPT + reply[:i], k)]
        drafts[i] = guesses
        kept = 0
        while kept < len(guesses) and i + kept < len(reply) and guesses[kept] == reply[i + kept]:
            kept += 1
        i += kept + 1
    return drafts


@pytest.mark.parametrize("reply,after,resumes_at", [
    # a word replaced: the reply's next token is the source's token after it
    (SOURCE[:12] + [99] + SOURCE[13:40], 14, 14),
    # a word put in: the source goes on where the reply left it
    (SOURCE[:12] + [99] + SOURCE[12:40], 14, 13),
    # three tokens dropped: the reply picks the source up further on
    (SOURCE[:12] + SOURCE[15:40], 13, 16),
], ids=["replaced", "inserted", "dropped"])
def test_right_after_an_edit_the_lookup_guesses_how_the_source_goes_on(reply, after, resumes_at):
    drafts = _replay(reply)
    assert drafts[after][:4] == SOURCE[resumes_at:resumes_at + 4]


def test_an_edit_in_text_that_was_not_being_copied_is_not_followed():
    """Two tokens that matched by chance are no copy: after them nothing is re-aligned."""
    reply = [SOURCE[5], SOURCE[6], 900, 901, SOURCE[8], 902]
    assert _replay(reply)[5] == []


def test_a_faithful_copy_earns_long_drafts_and_an_often_edited_one_drafts_of_one_pass():
    faithful = _replay(SOURCE)
    assert max(len(g) for g in faithful.values()) == 16
    edited = list(SOURCE)
    for at in range(14, len(edited), 14):  # a word changed every 14 tokens
        edited[at] = 900 + at
    drafts = _replay(edited)
    assert max(len(g) for g in drafts.values()) <= 7  # 8 rows: one pass of the kernels' tiles


def test_the_draft_length_weighs_what_a_guess_earns_against_what_its_row_costs():
    assert best_length(1.0, 16) == 16
    assert best_length(0.9, 16) == 7  # a longer check starts a second pass over the weights
    assert best_length(0.9, 16, p_first=0.05) == 0  # a re-alignment that rarely holds is not worth a row
    assert best_length(0.99, 4) == 4


def test_greedy_replies_that_correct_a_paragraph_keep_the_tokens_of_plain_decoding(smollm_path):
    model = Model.load(smollm_path)
    text = ("Every spring the town of Millbrook holds a market in the old square. Farmers bring fresh vegtables, "
            "eggs and honey from the surounding hills, and bakers sell bread that is still warm from the oven.")
    message = [{"role": "user", "content": f"Correct the spelling mistakes in this text. Change nothing else and "
                                           f"return the whole text:\n\n{text}"}]
    settings = SamplerSettings(temperature=0, max_tokens=48)

    def reply(speculation: Speculation) -> Done:
        session = ChatSession(model, n_ctx=512, speculation=speculation)
        return next(e for e in session.stream(message, settings) if isinstance(e, Done))

    plain, guessed = reply(OFF), reply(Speculation())
    assert guessed.token_ids == plain.token_ids
    assert guessed.stats.draft_accepted > 5  # the reply copied, and the guesses were checked
