"""ChatSession: the event stream, stops, UTF-8, cancellation, live settings,
KV reuse and context overflow."""

from __future__ import annotations

import threading

import pytest

from chord_core import Model
from chord_core.events import Done, ErrorEvent, Notice, Started, Stats, TokenEvent
from chord_core.sampling import LiveSettings, SamplerSettings
from chord_core.session import ChatSession
from chord_core.stop_strings import StopStringFilter

from scripted_model import ScriptedModel

GREEDY = SamplerSettings(temperature=0.0)


def run(events):
    evs = list(events)
    done = [e for e in evs if isinstance(e, Done)]
    return evs, (done[0] if done else None)


def ids_of(model, text):
    return model.tokenizer.encode(text, add_special=False)


@pytest.fixture(scope="module")
def smol(smollm_path):
    return Model.load(smollm_path)


# -- scripted: pure session logic ------------------------------------------------

def test_event_sequence_and_eot_stop(smollm_path):
    m = ScriptedModel(smollm_path, [])
    m.script = ids_of(m, "Hello there") + [m.tokenizer.token_id("<|im_end|>")]
    s = ChatSession(m)
    evs, done = run(s.stream([{"role": "user", "content": "Hi"}], GREEDY))
    assert isinstance(evs[0], Started) and isinstance(evs[-1], Done) and isinstance(evs[-2], Stats)
    assert done.reason == "stop" and done.text == "Hello there"
    assert "".join(e.text for e in evs if isinstance(e, TokenEvent)) == "Hello there"
    assert done.record["template"] == "GGUF tokenizer.chat_template"
    assert done.record["model"]["architecture"] == "llama"


def test_a_reply_is_recorded_under_the_library_name_with_general_name_beside_it(smollm_path):
    m = ScriptedModel(smollm_path, [])
    m.script = ids_of(m, "Hi") + [m.tokenizer.token_id("<|im_end|>")]
    _, done = run(ChatSession(m, model_name="smol-lib").stream([{"role": "user", "content": "Hi"}], GREEDY))
    model = done.record["model"]
    assert model["name"] == "smol-lib" and model["general_name"] == m.metadata["general.name"]
    assert model["quant"] == "Q4_1"


def test_a_chosen_fallbacks_end_of_turn_text_stops_the_reply(gemma_path):
    # Gemma has no <|im_end|> token: with chatml chosen it writes the marker as text
    m = ScriptedModel(gemma_path, [])
    m.script = ids_of(m, "Hello<|im_end|>\n<|im_start|>user\nmore")
    s = ChatSession(m, template_override="chatml")
    _, done = run(s.stream([{"role": "user", "content": "Hi"}], GREEDY))
    assert done.text == "Hello" and done.reason == "stop_string"


def test_a_template_name_or_file_given_as_template_is_the_fallback_batch_takes_under_that_name(gemma_path, tmp_path):
    # batch(..., template="chatml") takes a name or .jinja file; ChatSession's own `template=` takes them too
    m = ScriptedModel(gemma_path, [])
    by_name = ChatSession(m, template="chatml")
    assert by_name.template.source.kind == "fallback" and by_name.turn_stops == ("<|im_end|>",)
    jinja = tmp_path / "mine.jinja"
    jinja.write_text("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}")
    assert ChatSession(m, template=jinja).render([{"role": "user", "content": "Hi"}]) == "[user] Hi\n"


def test_a_base_model_without_a_chosen_template_completes_the_text_as_it_stands(gemma_path):
    m = ScriptedModel(gemma_path, [])
    m.script = ids_of(m, " there was")
    s = ChatSession(m)
    assert s.is_completion_only and s.turn_stops == ()
    evs, done = run(s.stream([{"role": "user", "content": "Once upon a time"}], GREEDY))
    assert s.render([{"role": "user", "content": "Once upon a time"}]) == "Once upon a time"
    assert evs[0].prompt_tokens == len(m.tokenize("Once upon a time", add_special=True, parse_special=True))
    assert done.record["template"] == "none (base model: completion only)"


def test_utf8_split_across_byte_tokens_never_leaks_invalid_text(gemma_path):
    m = ScriptedModel(gemma_path, [])
    text = "troll 🧌 ok"
    m.script = ids_of(m, text)
    assert len(m.script) > len(text.split()) + 2  # the emoji really is several byte tokens
    s = ChatSession(m)
    evs, done = run(s.complete("x", GREEDY))
    pieces = [e.text for e in evs if isinstance(e, TokenEvent)]
    assert "".join(pieces) == text and done.text == text
    assert all("\ufffd" not in p for p in pieces)
    assert "" in pieces  # held back while the emoji's bytes were incomplete


@pytest.mark.parametrize("stop", ["STOP", "ST", "world STOP"])
def test_stop_string_split_across_tokens_is_not_leaked(smollm_path, stop):
    m = ScriptedModel(smollm_path, [])
    m.script = ids_of(m, "hello world STOP more text")
    s = ChatSession(m)
    evs, done = run(s.complete("x", SamplerSettings(temperature=0.0, stop=(stop,))))
    streamed = "".join(e.text for e in evs if isinstance(e, TokenEvent))
    assert done.reason == "stop_string"
    assert streamed == done.text == "hello world STOP more text".split(stop)[0]
    assert stop not in streamed


def test_stop_filter_holds_back_prefixes():
    f = StopStringFilter(["</end>"])
    assert f.push("abc</") == "abc"
    assert f.push("en") == ""
    assert f.push("x") == "</enx"
    assert f.push("</end> tail") == "" and f.hit == "</end>"


def test_max_tokens(smollm_path):
    m = ScriptedModel(smollm_path, [])
    m.script = ids_of(m, "one two three four five six")
    _, done = run(ChatSession(m).complete("x", SamplerSettings(temperature=0, max_tokens=3)))
    assert done.reason == "length" and len(done.token_ids) == 3


def test_cancel_from_another_thread_stops_within_one_token(smollm_path):
    m = ScriptedModel(smollm_path, [])
    m.script = ids_of(m, " a" * 100)
    m.gated = True
    s = ChatSession(m)
    cancel = threading.Event()
    seen = []
    out = {}

    def consume():
        evs, out["done"] = run(s.complete("x", GREEDY, cancel))
        seen.extend(evs)

    t = threading.Thread(target=consume)
    t.start()
    for _ in range(5):
        m.step.set()
        while m.step.is_set():
            pass
    cancel.set()
    m.step.set()
    t.join(5)
    assert not t.is_alive()
    done = out["done"]
    assert done.reason == "cancelled"
    assert 4 <= len(done.token_ids) <= 7


def test_settings_change_applies_at_next_token(smollm_path):
    """max_tokens lowered mid-stream: the stream ends at the next token."""
    m = ScriptedModel(smollm_path, [])
    m.script = ids_of(m, " a" * 50)
    live = LiveSettings(SamplerSettings(temperature=0))
    s = ChatSession(m)
    count = 0
    done = None
    for ev in s.complete("x", live):
        if isinstance(ev, TokenEvent):
            count += 1
            if count == 5:
                live.update(max_tokens=6)
        if isinstance(ev, Done):
            done = ev
    assert len(done.token_ids) == 6 and done.reason == "length"


def test_context_overflow_drops_oldest_turns_keeps_system(smollm_path):
    m = ScriptedModel(smollm_path, [], n_ctx=160)
    m.script = ids_of(m, "ok") + [m.tokenizer.token_id("<|im_end|>")]
    s = ChatSession(m)
    msgs = [{"role": "system", "content": "SYSTEM PROMPT"}]
    for i in range(8):
        msgs += [{"role": "user", "content": f"question number {i} " * 3},
                 {"role": "assistant", "content": f"answer number {i} " * 3}]
    msgs.append({"role": "user", "content": "LAST QUESTION"})
    evs, done = run(s.stream(msgs, GREEDY))
    assert done is not None and done.text == "ok"
    assert any(isinstance(e, Notice) and "context full" in e.message for e in evs)
    prompt = m.tokenizer.decode(m.eval_calls[0])
    assert "SYSTEM PROMPT" in prompt and "LAST QUESTION" in prompt and "question number 0" not in prompt


def test_context_full_during_reply_refits_and_keeps_going(smollm_path):
    m = ScriptedModel(smollm_path, [], n_ctx=120)
    m.script = ids_of(m, " word" * 150)
    s = ChatSession(m)
    msgs = [{"role": "user", "content": "first " * 5}, {"role": "assistant", "content": "reply " * 5},
            {"role": "user", "content": "go on"}]
    evs, done = run(s.stream(msgs, SamplerSettings(temperature=0, max_tokens=140)))
    assert done is not None and not any(isinstance(e, ErrorEvent) for e in evs)
    assert any(isinstance(e, Notice) for e in evs)
    assert done.reason == "length"  # the reply's own length outgrew the context at last
    assert done.text.startswith(" word word")


def test_message_too_long_is_an_error_event_not_a_crash(smollm_path):
    m = ScriptedModel(smollm_path, [], n_ctx=64)
    evs, done = run(ChatSession(m).stream([{"role": "user", "content": "long " * 200}], GREEDY))
    assert done is None and isinstance(evs[-1], ErrorEvent) and "too long" in evs[-1].message


def test_engine_exception_becomes_error_event(smollm_path):
    m = ScriptedModel(smollm_path, [1, 2, 3])

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    m.eval = boom
    evs, _ = run(ChatSession(m).complete("x", GREEDY))
    assert isinstance(evs[-1], ErrorEvent) and "kaboom" in evs[-1].message


# -- real model ---------------------------------------------------------------------

def test_kv_reuse_prefills_only_the_new_turn(smol):
    s = ChatSession(smol, n_ctx=1024)
    msgs = [{"role": "user", "content": "Say hi."}]
    evs, done = run(s.stream(msgs, SamplerSettings(temperature=0, max_tokens=8)))
    first = next(e for e in evs if isinstance(e, Started))
    assert first.reused_tokens == 0
    msgs += [{"role": "assistant", "content": done.text}, {"role": "user", "content": "Again."}]
    evs, _ = run(s.stream(msgs, SamplerSettings(temperature=0, max_tokens=4)))
    second = next(e for e in evs if isinstance(e, Started))
    assert second.reused_tokens >= first.prompt_tokens
    # regenerate: same prompt again reuses all but one token
    evs, _ = run(s.stream(msgs, SamplerSettings(temperature=0, max_tokens=4)))
    third = next(e for e in evs if isinstance(e, Started))
    assert third.reused_tokens == third.prompt_tokens - 1


def test_reuse_gives_the_same_reply_as_a_fresh_session(smol):
    msgs = [{"role": "user", "content": "Name a fruit."}]
    settings = SamplerSettings(temperature=0, max_tokens=10)
    warm = ChatSession(smol, n_ctx=512)
    run(warm.stream([{"role": "user", "content": "Name a colour."}], settings))
    _, a = run(warm.stream(msgs, settings))
    _, b = run(ChatSession(smol, n_ctx=512).stream(msgs, settings))
    assert a.token_ids == b.token_ids


def test_seeded_sampling_reproduces(smol):
    msgs = [{"role": "user", "content": "Tell me a word."}]
    st = SamplerSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=1234, max_tokens=12)
    _, a = run(ChatSession(smol).stream(msgs, st))
    _, b = run(ChatSession(smol).stream(msgs, st))
    _, c = run(ChatSession(smol).stream(msgs, SamplerSettings(**{**st.to_dict(), "seed": 99})))
    assert a.token_ids == b.token_ids and a.record["seed"] == 1234
    assert a.token_ids != c.token_ids


def test_token_events_carry_probabilities(smol):
    evs, _ = run(ChatSession(smol).stream([{"role": "user", "content": "Hi"}],
                                          SamplerSettings(temperature=0, max_tokens=4)))
    toks = [e for e in evs if isinstance(e, TokenEvent) and e.id >= 0]
    assert toks and all(0 < t.prob <= 1 and len(t.alternatives) == 5 for t in toks)
    assert all(t.alternatives[0].prob >= t.alternatives[-1].prob for t in toks)
    assert toks[0].id == toks[0].alternatives[0].id  # greedy picks the top alternative


def test_a_reply_iterated_on_another_thread_stops_soon_after_cancel(smollm_path):
    import queue

    m = ScriptedModel(smollm_path, [])
    m.script = ids_of(m, " b" * 200)
    m.gated = True
    s = ChatSession(m)
    q: queue.Queue = queue.Queue()
    cancel = threading.Event()

    def reply() -> None:
        for ev in s.complete("x", GREEDY, cancel):
            q.put(ev)

    th = threading.Thread(target=reply, daemon=True)
    th.start()
    m.step.set()  # release the prefill
    assert isinstance(q.get(timeout=5), Started)
    first = q.get(timeout=5)
    assert isinstance(first, TokenEvent)
    cancel.set()
    m.step.set()
    th.join(5)
    rest = []
    while not q.empty():
        rest.append(q.get())
    assert not th.is_alive() and isinstance(rest[-1], Done) and rest[-1].reason == "cancelled"
    assert len(rest[-1].token_ids) <= 3


def test_refit_never_drops_the_question_being_answered(smollm_path, monkeypatch):
    import chord_core.generator as generator_module

    monkeypatch.setattr(generator_module, "CANCEL_CHUNK", 10**6)  # one eval call per prefill, to read them back
    # the old exchange is over half the context, so a refit can free half of it
    m = ScriptedModel(smollm_path, [], n_ctx=300)
    m.script = ids_of(m, " wave" * 400)
    s = ChatSession(m)
    msgs = [{"role": "user", "content": "old question " * 40}, {"role": "assistant", "content": "old answer " * 40},
            {"role": "user", "content": "QUESTION-MARK write a long poem"}]
    evs, done = run(s.stream(msgs, SamplerSettings(temperature=0, max_tokens=350)))
    prefills = [m.tokenizer.decode(c) for c in m.eval_calls if len(c) > 1]
    assert len(prefills) >= 2  # the first prompt, then at least one refit
    assert all("QUESTION-MARK" in p for p in prefills)
    assert done is not None and any(isinstance(e, Notice) for e in evs)


def test_continuing_a_short_reply_cuts_at_the_reply_not_inside_the_end_marker(smollm_path, gemma_path):
    for path, tail in ((smollm_path, "<|im_start|>assistant\nend"), (gemma_path, "<start_of_turn>model\nend")):
        s = ChatSession(ScriptedModel(path, []), template_override=None if path == smollm_path else "gemma")
        prompt = s.render([{"role": "user", "content": "say end"}, {"role": "assistant", "content": "end"}],
                          continue_reply=True)
        assert prompt.endswith(tail), prompt[-40:]


def test_decode_speed_counts_the_steps_it_ran(smollm_path, monkeypatch):
    """Five tokens then end of turn: five decode steps of 0.1 s each is 10 tok/s."""
    import chord_core.generator as generator_module

    clock = [100.0]
    monkeypatch.setattr(generator_module.time, "perf_counter", lambda: clock[0])
    m = ScriptedModel(smollm_path, [])
    m.script = ids_of(m, " a b c d e") + [m.tokenizer.token_id("<|im_end|>")]
    real_eval = m.eval

    def timed_eval(ids, cache, all_logits=False):
        if len(ids) == 1:
            clock[0] += 0.1
        return real_eval(ids, cache, all_logits)

    m.eval = timed_eval
    _, done = run(ChatSession(m).complete("x", GREEDY))
    assert len(done.token_ids) == 5 and done.reason == "stop"
    assert done.stats.decode_tok_s == pytest.approx(10.0)


def test_record_keeps_settings_changed_mid_reply(smollm_path):
    m = ScriptedModel(smollm_path, [])
    m.script = ids_of(m, " a" * 20)
    live = LiveSettings(SamplerSettings(temperature=0, max_tokens=10))
    done = None
    for ev in ChatSession(m).complete("x", live):
        if isinstance(ev, TokenEvent) and ev.id >= 0 and live.snapshot().top_k == 40:
            live.update(top_k=7)
        if isinstance(ev, Done):
            done = ev
    assert done.record["settings"]["top_k"] == 40
    assert done.record["settings_changes"] == [{"at_token": 1, "top_k": 7}]


def test_when_only_the_question_could_go_the_reply_is_cut_instead(smollm_path):
    """Dropping the earlier exchange is not enough: the question stays and the
    reply ends at the context size, rather than going on without its question."""
    m = ScriptedModel(smollm_path, [], n_ctx=200)
    m.script = ids_of(m, " wave" * 300)
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "tell me things " * 25 + "QUESTION-MARK write a long poem"}]
    evs, done = run(ChatSession(m).stream(msgs, SamplerSettings(temperature=0, max_tokens=250)))
    prefills = [m.tokenizer.decode(c) for c in m.eval_calls if len(c) > 1]
    assert prefills and all("QUESTION-MARK" in p for p in prefills)
    assert done.reason == "length"
    assert any(isinstance(e, Notice) and "cut at the context size" in e.message for e in evs)


def test_fitting_a_long_chat_keeps_the_newest_exchanges_in_few_renders(smollm_path):
    m = ScriptedModel(smollm_path, [], n_ctx=256)
    s = ChatSession(m)
    msgs = [{"role": "system", "content": "SYS"}]
    for i in range(60):
        msgs += [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
    msgs.append({"role": "user", "content": "LAST"})
    calls = []
    real = s.prompt_ids
    s.prompt_ids = lambda ms, cont=False: calls.append(1) or real(ms, cont)
    kept, ids, dropped = s._fit(msgs, False, reserve=64)
    assert len(ids) + 64 <= 256 and len(calls) <= 9  # 1 + log2(60) renders, not one per exchange
    assert kept[0]["content"] == "SYS" and kept[-1]["content"] == "LAST" and kept[1]["role"] == "user"
    assert dropped == len(msgs) - len(kept)
    # the fewest dropped: one exchange more would have fitted no longer
    more = [kept[0]] + msgs[len(msgs) - len(kept) - 1:]  # one exchange (user, assistant) more
    assert more[1]["role"] == "user"
    assert len(real(more)) + 64 > 256


def test_non_finite_logits_are_a_clear_error_not_a_sampler_crash(smollm_path):
    import numpy as np

    m = ScriptedModel(smollm_path, [])
    real_eval = m.eval

    def nan_eval(ids, cache, all_logits=False):
        real_eval(ids, cache, all_logits)
        return np.full(m.n_vocab, np.nan, np.float32)  # what damaged weights produce

    m.eval = nan_eval
    evs, done = run(ChatSession(m).stream([{"role": "user", "content": "hi"}], SamplerSettings()))
    errors = [e for e in evs if isinstance(e, ErrorEvent)]
    assert done is None and len(errors) == 1
    assert "non-finite logits" in errors[0].message and "damaged" in errors[0].message
