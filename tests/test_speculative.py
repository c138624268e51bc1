"""Speculative decoding: exact at temperature 0, the target's distribution
when sampling, cut where plain decoding cuts, and bad settings refused."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from chord_core.drafters import OFF, PromptLookup, Speculation, check_draft_model
from chord_core.errors import ChordError
from chord_core.events import Done, TokenEvent
from chord_core.model import Model
from chord_core.sampling import Sampler, SamplerSettings, softmax
from chord_core.session import ChatSession
from chord_core.speculative_sampling import DraftToken, judge, propose

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
PARAGRAPH = ("The committee have decided that the new library will open it's doors on monday, and everyone are "
             "welcome to attend the ceremony which start at ten o'clock.")
GREEDY = SamplerSettings(temperature=0, max_tokens=40)


@pytest.fixture(scope="module")
def smol(smollm_path):
    return Model.load(smollm_path)


@pytest.fixture(scope="module")
def gemma(gemma_path):
    return Model.load(gemma_path)


def _reply(model: Model, speculation: Speculation, settings=GREEDY, cancel_after: int | None = None) -> Done:
    session = ChatSession(model, n_ctx=1024, speculation=speculation)
    cancel = threading.Event()
    if model.info.has_chat_template:
        msgs = [{"role": "user", "content": "Repeat this paragraph exactly:\n\n" + PARAGRAPH}]
        events = session.stream(msgs, settings, cancel)
    else:
        events = session.complete(f"Text: {PARAGRAPH}\nThe same text again: {PARAGRAPH[:40]}", settings, cancel)
    shown = 0
    for ev in events:
        if isinstance(ev, TokenEvent) and ev.id >= 0:
            shown += 1
            if cancel_after is not None and shown == cancel_after:
                cancel.set()
        if isinstance(ev, Done):
            return ev
    raise AssertionError("no Done event")


@pytest.mark.parametrize("which", ["smol", "gemma"])
def test_greedy_speculation_gives_exactly_the_tokens_of_plain_decoding(which, request):
    model = request.getfixturevalue(which)
    plain = _reply(model, OFF)
    for speculation in (Speculation(lookup=3, draft_max=6), Speculation(lookup=0, draft_max=3, draft_model=model)):
        fast = _reply(model, speculation)
        assert fast.token_ids == plain.token_ids, speculation.describe()
        assert fast.text == plain.text and fast.reason == plain.reason
        assert fast.stats.draft_accepted > 0  # guesses were made and kept: the check ran
        assert fast.record["speculation"]["accepted"] == fast.stats.draft_accepted


@pytest.mark.parametrize("target,draft", [("tiny-llama-Q4_K_M.gguf", "tiny-llama-F32.gguf"),
                                          ("tiny-gemma3-F32.gguf", "tiny-gemma3-F32.gguf")])
def test_greedy_speculation_on_tiny_fixtures_gives_the_tokens_of_plain_decoding(target, draft):
    model = Model.load(TINY / target)
    drafter = Model.load(TINY / draft)
    # random weights babble; a repeated, penalised prompt still gives lookup matches to check
    prompt = [int(i) for i in np.random.default_rng(3).integers(5, model.n_vocab, 12)] * 3
    settings = SamplerSettings(temperature=0, max_tokens=48, repeat_penalty=1.3)

    def ids(speculation: Speculation) -> tuple[int, ...]:
        session = ChatSession(model, n_ctx=256, speculation=speculation)
        done = [e for e in session.generate_ids(prompt, settings) if isinstance(e, Done)][0]
        return done.token_ids, done.stats.draft_proposed

    plain, _ = ids(OFF)
    for speculation in (Speculation(lookup=2, draft_max=5), Speculation(lookup=0, draft_max=4, draft_model=drafter)):
        got, proposed = ids(speculation)
        assert got == plain and proposed > 0, speculation.describe()


def test_a_stop_string_and_the_token_limit_cut_where_plain_decoding_cuts(smol):
    plain = _reply(smol, OFF, SamplerSettings(temperature=0, max_tokens=60))
    stop = plain.text[25:32]  # a string the reply writes, mid-way
    for settings in (SamplerSettings(temperature=0, max_tokens=60, stop=(stop,)),
                     SamplerSettings(temperature=0, max_tokens=17)):
        a, b = _reply(smol, OFF, settings), _reply(smol, Speculation(draft_max=8), settings)
        assert (b.token_ids, b.text, b.reason) == (a.token_ids, a.text, a.reason)


def test_cancel_stops_at_once_even_inside_a_verified_run_of_guesses(smol):
    done = _reply(smol, Speculation(draft_max=8), cancel_after=5)
    assert done.reason == "cancelled" and len(done.token_ids) == 5


def test_a_seed_reproduces_a_speculative_sampled_reply(smol):
    settings = SamplerSettings(temperature=0.9, seed=11, max_tokens=30)
    a, b = (_reply(smol, Speculation(draft_max=5, draft_model=smol)) for _ in range(2))
    assert a.token_ids == b.token_ids
    a, b = (_reply(smol, Speculation(draft_max=5), settings) for _ in range(2))
    assert a.token_ids == b.token_ids and a.stats.draft_proposed > 0


def test_with_prompt_lookup_a_seed_gives_the_tokens_of_plain_sampling(smol):
    settings = SamplerSettings(temperature=0.7, seed=5, max_tokens=40)
    fast = _reply(smol, Speculation(draft_max=6), settings)
    assert fast.token_ids == _reply(smol, OFF, settings).token_ids and fast.stats.draft_accepted > 0


def test_with_a_batcher_the_session_decodes_plainly(smol):
    steps = []

    class Batcher:
        def decode(self, token, cache):
            steps.append(token)
            return smol.eval([token], cache)

        def leave(self, cache):
            pass

    session = ChatSession(smol, n_ctx=1024, batcher=Batcher(), speculation=Speculation(draft_max=6))
    msgs = [{"role": "user", "content": "Repeat this paragraph exactly:\n\n" + PARAGRAPH}]
    done = [e for e in session.stream(msgs, GREEDY) if isinstance(e, Done)][0]
    assert done.token_ids == _reply(smol, OFF).token_ids
    assert done.stats.draft_proposed == 0 and len(steps) == len(done.token_ids)


# -- the sampling rule ------------------------------------------------------------

# chi-square's 0.999 quantile with 7 degrees of freedom (8 tokens): a correct
# rule exceeds it once in a thousand seeds; this seed is fixed, so the test is deterministic
CHI2_999_DF7 = 24.32
DRAWS = 6000


def _chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("drafter", ["model", "lookup"])
def test_speculative_sampling_draws_from_the_targets_distribution(drafter):
    target = np.array([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, 1.2, 0.3], np.float32)
    draft = np.array([0.0, 0.5, 2.5, 1.0, 1.5, 0.0, -1.0, 2.0], np.float32)  # it prefers other tokens
    settings = SamplerSettings(temperature=0.8, top_k=0, top_p=1.0, min_p=0.0, seed=1234)
    sampler = Sampler(settings)
    counts = np.zeros(len(target))
    kept = 0
    for _ in range(DRAWS):
        guess = propose(sampler, draft, []) if drafter == "model" else DraftToken(2)  # lookup: always token 2
        token, was_kept = judge(sampler, target, [], guess)
        counts[token.id] += 1
        kept += was_kept
    p = softmax(target / np.float32(0.8))
    assert _chi_square(counts, p) < CHI2_999_DF7
    assert 0 < kept < DRAWS  # guesses were both kept and replaced


def test_penalties_judge_each_guess_with_the_history_before_it():
    """A guess repeating a token from earlier in the history is judged penalised, as plain decoding would."""
    logits = np.array([3.0, 2.9, 0.0, 0.0], np.float32)
    sampler = Sampler(SamplerSettings(temperature=0, repeat_penalty=1.5))
    assert judge(sampler, logits, [1], DraftToken(0))[1] is True
    token, kept = judge(sampler, logits, [0], DraftToken(0))  # 0 was said before: 3.0 / 1.5 < 2.9
    assert token.id == 1 and kept is False


def test_prompt_lookup_proposes_what_followed_the_latest_match():
    lookup = PromptLookup(max_ngram=3)
    context = [1, 2, 3, 4, 5, 9, 2, 3, 7, 8, 6, 2, 3]
    assert [d.id for d in lookup.propose(context, 3)] == [7]  # after the latest; a 2-token match earns one guess
    assert lookup.propose([1, 2, 3, 4], 3) == []


def test_prompt_lookup_drafts_as_far_as_its_match_runs_and_prefers_the_longest_match():
    lookup = PromptLookup(max_ngram=3)
    # a 2-token match (common words in free text) earns one guess, a 3-token match two
    assert [d.id for d in lookup.propose([5, 0, 1, 2, 3, 4, 7, 8, 9, 6, 1, 2], 8)] == [3]
    assert [d.id for d in lookup.propose([5, 6, 1, 2, 3, 4, 7, 8, 9, 6, 1, 2], 8)] == [3, 4]
    # a copy in progress (6 tokens matched) earns a long one, from where the longer match
    # was, not from a later place that matches only the last 3 tokens
    copied = [20, 10, 11, 12, 13, 14, 50, 51, 52, 53, 54, 55, 56, 57]
    later = [30, 12, 13, 14, 60, 61, 62, 63]
    context = copied + later + [20, 10, 11, 12, 13, 14]
    assert [d.id for d in lookup.propose(context, 8)] == [50, 51, 52, 53, 54, 55, 56]
    assert [d.id for d in lookup.propose(context, 4)] == [50, 51, 52, 53]


# -- bad input --------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({"draft_max": 0}, "--draft-max must be a whole number from 1 to 31, got 0"),
    ({"draft_max": 10**6}, "--draft-max must be a whole number from 1 to 31, got 1000000"),
    ({"lookup": 1}, "--lookup must be 0 (off) or at least 2 tokens, got 1"),
    ({"lookup": 99}, "--lookup must be a whole number from 0 to 16, got 99"),
])
def test_bad_speculation_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(ChordError) as err:
        Speculation(**kwargs)
    assert str(err.value) == message


def test_a_draft_model_with_another_vocabulary_is_refused_naming_the_first_differing_token(smol, gemma):
    with pytest.raises(ChordError) as err:
        check_draft_model(smol, gemma)
    first = next(i for i, (a, b) in enumerate(zip(smol.tokenizer.id_to_token, gemma.tokenizer.id_to_token)) if a != b)
    assert str(err.value) == (
        f"draft model {gemma.info.name}: its vocabulary differs from {smol.info.name}'s at token {first}: "
        f"{gemma.tokenizer.id_to_token[first]!r} where the target has {smol.tokenizer.id_to_token[first]!r} "
        "(a draft model needs the same vocabulary)")
    # the tiny fixtures hold SmolLM2's first 1024 tokens: the first one missing is named
    with pytest.raises(ChordError, match="at token 1024: no token where the target has "):
        check_draft_model(smol, Model.load(TINY / "tiny-llama-F32.gguf"))


def test_a_draft_model_no_smaller_than_the_target_gets_a_warning(smol):
    assert "not smaller" in check_draft_model(smol, smol)
    assert check_draft_model(Model.load(TINY / "tiny-llama-Q4_K_M.gguf"), Model.load(TINY / "tiny-llama-F32.gguf")) is None
