"""chord-chat serve through clients nobody here wrote: the official ``openai``
package and ``curl``; and the same tokens as ``chord-chat run``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from chord_core.slots import SlotPool
from server_harness import JOIN_S, MODEL_ID, chat, serving, smollm, smollm_path, sse_data

openai = pytest.importorskip("openai", reason="the openai package is in the test extra")

API_KEY = "test-key-123"


@pytest.fixture(scope="module")
def server():
    with serving(SlotPool(smollm(), 2, 1024), api_key=API_KEY) as running:
        yield running


@pytest.fixture()
def client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key=API_KEY, max_retries=0, timeout=JOIN_S)


def run_cli(*args: str) -> dict:
    """``chord-chat run ... --json`` in a subprocess: the reference a seeded request must match."""
    r = subprocess.run([sys.executable, "-m", "chord_tui", "run", str(smollm_path()), *args, "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def token_bytes(ids: list[int]) -> list[bytes]:
    return [smollm().tokenizer.token_to_piece(i) for i in ids]


def test_seeded_chat_request_gives_the_tokens_of_chord_chat_run(client):
    question = "Name three colours."
    expected = run_cli("--temperature", "0.9", "--seed", "7", "-n", "12", question)
    reply = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": question}],
                                           temperature=0.9, seed=7, max_tokens=12, logprobs=True)
    choice = reply.choices[0]
    assert choice.message.content == expected["text"]
    assert [bytes(t.bytes) for t in choice.logprobs.content] == token_bytes(expected["token_ids"])
    assert reply.usage.completion_tokens == len(expected["token_ids"])
    assert reply.usage.prompt_tokens == expected["prompt_tokens"]


def test_seeded_completion_gives_the_tokens_of_chord_chat_run_raw(client):
    expected = run_cli("--raw", "--temperature", "0.7", "--seed", "3", "-n", "10", "The capital of France is")
    reply = client.completions.create(model=MODEL_ID, prompt="The capital of France is", temperature=0.7, seed=3,
                                      max_tokens=10, logprobs=1)
    assert reply.choices[0].text == expected["text"]
    assert [t.encode() for t in reply.choices[0].logprobs.tokens] == token_bytes(expected["token_ids"])


def test_seeded_requests_give_the_same_tokens_alone_and_generating_together(client):
    """Concurrent replies share batched decode steps; each still gets its own tokens."""
    questions = [("Name a fruit.", 1), ("Name a river.", 2)]

    def ask(question: str, seed: int) -> str:
        reply = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": question}],
                                               temperature=0.9, seed=seed, max_tokens=12)
        return reply.choices[0].message.content

    alone = [ask(q, seed) for q, seed in questions]
    with ThreadPoolExecutor(len(questions)) as pool:
        together = list(pool.map(lambda qs: ask(*qs), questions))
    assert together == alone


def test_openai_stream_gives_the_same_reply_as_a_whole_request(client):
    fields = dict(model=MODEL_ID, messages=[{"role": "user", "content": "Say hello."}], temperature=0.8, seed=11,
                  max_tokens=10)
    whole = client.chat.completions.create(**fields)
    chunks = list(client.chat.completions.create(**fields, stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_openai_logprobs_are_the_chosen_tokens_and_their_top_alternatives(client):
    reply = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}],
                                           temperature=0, max_tokens=6, logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens == 6
    for entry in content:
        assert len(entry.top_logprobs) == 3
        assert entry.logprob <= 0
        # greedy: the chosen token is the most likely one, with the same log-probability
        assert entry.top_logprobs[0].token == entry.token
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob)
        assert [a.logprob for a in entry.top_logprobs] == sorted((a.logprob for a in entry.top_logprobs), reverse=True)
    assert "".join(e.token for e in content) == reply.choices[0].message.content


def test_openai_streamed_logprobs_come_with_each_token(client):
    chunks = list(client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}],
                                                 temperature=0, max_tokens=5, logprobs=True, top_logprobs=2,
                                                 stream=True))
    entries = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert len(entries) == 5
    assert all(len(e.top_logprobs) == 2 for e in entries)


def test_openai_completion_logprobs_in_the_legacy_format(client):
    reply = client.completions.create(model=MODEL_ID, prompt="Once upon a time", temperature=0, max_tokens=5,
                                      logprobs=2)
    lp = reply.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 5
    assert "".join(lp.tokens) == reply.choices[0].text
    assert all(len(top) <= 2 and lp.tokens[i] in top for i, top in enumerate(lp.top_logprobs))
    assert reply.usage.completion_tokens == 5
    assert reply.model_extra["timings"]["predicted_n"] == 5


def test_openai_models_lists_the_loaded_model_and_the_library(client):
    models = {m.id: m for m in client.models.list().data}
    assert models[MODEL_ID].model_extra["loaded"] is True
    assert all(m.object == "model" for m in models.values())


def test_openai_client_sees_a_wrong_key_as_authentication_error(server):
    bad = openai.OpenAI(base_url=server.base_url + "/v1", api_key="wrong", max_retries=0, timeout=JOIN_S)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_openai_client_sees_an_unknown_model_as_not_found(client):
    with pytest.raises(openai.NotFoundError, match="not loaded"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)


# -- curl ----------------------------------------------------------------------------------

def curl(server, *args: str, key: str | None = API_KEY) -> subprocess.CompletedProcess:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    auth = ["-H", f"Authorization: Bearer {key}"] if key else []
    return subprocess.run(["curl", "-sS", "--max-time", str(int(JOIN_S)), *auth, *args], capture_output=True,
                          text=True, timeout=JOIN_S + 10)


def test_curl_streams_chunks_ending_with_done(server):
    body = json.dumps(chat("Hi", max_tokens=4, temperature=0, stream=True))
    r = curl(server, "-N", "-H", "Content-Type: application/json", "-d", body, server.base_url + "/v1/chat/completions")
    assert r.returncode == 0, r.stderr
    data = sse_data(r.stdout)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)


def test_curl_whole_reply_carries_usage_and_timings(server):
    body = json.dumps(chat("Hi", max_tokens=3, temperature=0))
    r = curl(server, "-H", "Content-Type: application/json", "-d", body, server.base_url + "/v1/chat/completions")
    reply = json.loads(r.stdout)
    assert reply["object"] == "chat.completion"
    assert reply["usage"]["completion_tokens"] == 3
    assert reply["usage"]["total_tokens"] == reply["usage"]["prompt_tokens"] + 3
    assert reply["timings"]["predicted_n"] == 3 and reply["timings"]["prompt_per_second"] > 0


def test_curl_without_the_key_gets_401_and_health_needs_none(server):
    r = curl(server, "-w", "\n%{http_code}", server.base_url + "/v1/models", key=None)
    body, status = r.stdout.rsplit("\n", 1)
    assert status == "401"
    assert json.loads(body)["error"]["code"] == "invalid_api_key"
    r = curl(server, "-w", "\n%{http_code}", server.base_url + "/health", key=None)
    assert r.stdout.rsplit("\n", 1)[1] == "200"
