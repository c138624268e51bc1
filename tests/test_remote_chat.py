"""RemoteChat against tests/openai_double.py: the engine's events from an OpenAI-compatible
stream, and every way a server can fail, each a one-line ErrorEvent after what did arrive."""

from __future__ import annotations

import math
import threading

import pytest

from chord_core.errors import ChordError
from chord_core.events import Done, ErrorEvent, Started, TokenEvent
from chord_core.library.remote import new_remote
from chord_core.remote_chat import RemoteChat, RemoteError
from chord_core.sampling import LiveSettings, SamplerSettings
from openai_double import OpenAIDouble, WAIT_S

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def double():
    with OpenAIDouble() as server:
        yield server


def chat_for(url: str, **entry) -> RemoteChat:
    return RemoteChat(new_remote("remote-test", url, entry.get("model"), entry.get("api_key_env")))


def events(chat: RemoteChat, settings=None, cancel=None) -> list:
    return list(chat.stream(HELLO, settings, cancel))


def test_a_streamed_reply_becomes_token_events_with_the_servers_probabilities(double):
    chat = chat_for(double.url).connect()
    assert chat.model_id == "double-model" and chat.n_ctx == 2048  # from /v1/models
    evs = events(chat)
    assert isinstance(evs[0], Started) and isinstance(evs[-1], Done)
    tokens = [e for e in evs if isinstance(e, TokenEvent)]
    assert [t.text for t in tokens] == double.reply
    assert tokens[1].prob == pytest.approx(0.8) and tokens[1].alternatives[1].text == "alt1"
    done = evs[-1]
    assert done.reason == "stop" and done.text == "Hello, world!"
    assert done.stats.prompt_tokens == 12 and done.stats.generated == 4  # the server's usage
    assert done.record["model"] == {"name": "remote-test", "remote": double.url, "id": "double-model"}


def test_without_logprobs_each_chunk_is_a_token_of_unknown_probability(double):
    double.logprobs = False
    tokens = [e for e in events(chat_for(double.url)) if isinstance(e, TokenEvent)]
    assert [t.text for t in tokens] == double.reply
    assert all(math.isnan(t.prob) and t.alternatives == () for t in tokens)


def test_the_settings_of_the_moment_go_with_each_request(double):
    live = LiveSettings(SamplerSettings(temperature=0.3, top_k=7, seed=11, max_tokens=20, stop=("END",)))
    chat = chat_for(double.url, model="double-model")
    events(chat, live)
    live.update(temperature=1.2, min_p=0.2)
    events(chat, live)
    first, second = double.requests
    assert first["temperature"] == 0.3 and first["top_k"] == 7 and first["seed"] == 11
    assert first["max_tokens"] == 20 and first["stop"] == ["END"] and first["model"] == "double-model"
    assert first["stream"] is True and first["logprobs"] is True and first["messages"] == HELLO
    assert second["temperature"] == 1.2 and second["min_p"] == 0.2


def test_a_refused_key_is_an_error_naming_the_variable(double, monkeypatch):
    double.api_key = "right"
    monkeypatch.setenv("DOUBLE_KEY", "wrong")
    evs = events(chat_for(double.url, api_key_env="DOUBLE_KEY"))
    assert len(evs) == 1 and isinstance(evs[0], ErrorEvent)
    assert "401" in evs[0].message and "$DOUBLE_KEY was refused" in evs[0].message
    monkeypatch.setenv("DOUBLE_KEY", "right")
    assert isinstance(events(chat_for(double.url, api_key_env="DOUBLE_KEY"))[-1], Done)
    assert double.requests[-1]["messages"] == HELLO


def test_a_key_variable_that_is_not_set_is_refused_at_use(double, monkeypatch):
    monkeypatch.delenv("DOUBLE_KEY", raising=False)
    with pytest.raises(ChordError, match=r"takes its API key from \$DOUBLE_KEY, which is not set"):
        chat_for(double.url, api_key_env="DOUBLE_KEY")


def test_a_model_the_server_no_longer_has_is_an_error(double):
    chat = chat_for(double.url, model="double-model")
    double.models = ["another-model"]
    evs = events(chat)
    assert isinstance(evs[-1], ErrorEvent) and "has no model double-model (404" in evs[-1].message


def test_an_unreachable_server_is_an_error_at_connect_and_in_the_stream(double):
    url = double.url
    double.stop()
    with pytest.raises(RemoteError, match=f"cannot reach {url}"):
        chat_for(url).connect()
    evs = events(chat_for(url))
    assert len(evs) == 1 and isinstance(evs[0], ErrorEvent) and f"cannot reach {url}" in evs[0].message


def test_a_dropped_stream_keeps_the_tokens_that_arrived(double):
    double.drop_after = 2
    evs = events(chat_for(double.url))
    assert [e.text for e in evs if isinstance(e, TokenEvent)] == double.reply[:2]
    assert isinstance(evs[-1], ErrorEvent) and "broke off mid-reply" in evs[-1].message
    assert "2 tokens arrived and are kept" in evs[-1].message


def test_an_error_inside_the_stream_ends_the_reply_with_the_servers_message(double):
    double.reply = ["Hi"]
    double.stream_error = "engine exploded"
    evs = events(chat_for(double.url))
    assert isinstance(evs[-1], ErrorEvent) and "engine exploded" in evs[-1].message


def test_cancel_ends_the_reply_and_closes_the_stream(double):
    double.hold_after = 2  # the server waits there until released or the client leaves
    cancel = threading.Event()
    seen = []
    for ev in chat_for(double.url).stream(HELLO, None, cancel):
        seen.append(ev)
        if isinstance(ev, TokenEvent) and len([e for e in seen if isinstance(e, TokenEvent)]) == 2:
            assert double.holding.wait(WAIT_S)
            cancel.set()
    assert isinstance(seen[-1], Done) and seen[-1].reason == "cancelled" and seen[-1].text == "Hello,"
    assert double.client_gone.wait(WAIT_S), "the server never saw the client close the stream"


def test_without_a_model_id_a_server_listing_several_needs_one(double):
    double.models = ["a", "b"]
    with pytest.raises(RemoteError, match=r"serves 2 models \(a, b\).*--model ID"):
        chat_for(double.url).connect()
