"""chord-chat serve's failures: OpenAI-style error objects with the right
status, never a traceback, and the server goes on serving."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from contextlib import contextmanager

import pytest

from chord_core.events import ErrorEvent, Started
from chord_core.server.admission import Admission
from chord_core.server.app import ModelHost, create_app
from chord_core.server.errors import ApiError
from chord_core.slots import SlotPool
from server_harness import JOIN_S, ObservedPool, RunningServer, chat, serving, smollm, sse_data

BODY_LIMIT = 4096


@pytest.fixture(scope="module")
def pool():
    return SlotPool(smollm(), 1, 128)  # one slot, a small context: busy and too-long are easy to reach


@pytest.fixture(scope="module")
def server(pool):
    with serving(pool, body_limit=BODY_LIMIT) as running:
        yield running


COUNTING = {"prompt": "1, 2, 3, 4, 5,", "temperature": 0}
MAX_TOKENS = 200  # greedy counting goes on past this: only a cancel ends the reply sooner


def send_raw(port: int, path: str, fields: dict) -> socket.socket:
    body = json.dumps(fields).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=JOIN_S)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def assert_error(status: int, body, expected_status: int, param: str | None = None, code: str | None = None) -> dict:
    assert status == expected_status, body
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert "Traceback" not in body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def assert_still_serving(server) -> None:
    status, _, body = server.post("/v1/chat/completions", chat("Hi", max_tokens=2, temperature=0))
    assert status == 200, body
    assert body["usage"]["completion_tokens"] == 2


def test_malformed_json_is_400_and_the_next_request_is_answered(server):
    status, _, body = server.post("/v1/chat/completions", raw=b'{"messages": [')
    assert "not valid JSON" in assert_error(status, body, 400)["message"]
    assert_still_serving(server)


@pytest.mark.parametrize("fields, param", [
    ({"temperature": "hot"}, "temperature"),
    ({"max_tokens": 2.5}, "max_tokens"),
    ({"top_p": 1.5}, "top_p"),
    ({"seed": 2 ** 40}, "seed"),
    ({"stop": [""]}, "stop"),
    ({"stream": "yes"}, "stream"),
    ({"logprobs": True, "top_logprobs": 9}, "top_logprobs"),
    ({"n": 3}, "n"),
    ({"frobnicate": 1}, "frobnicate"),
])
def test_a_field_of_the_wrong_type_or_value_is_400_naming_it(server, fields, param):
    status, _, body = server.post("/v1/chat/completions", chat("Hi", **{"max_tokens": 2, **fields}))
    assert param in assert_error(status, body, 400, param=param)["message"]


def test_the_shapes_openai_clients_send_are_accepted(server):
    status, _, body = server.post("/v1/chat/completions", {
        "messages": [{"role": "developer", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": "Hi"}], "name": "ann"}],
        "max_completion_tokens": 2, "stop": "\n\n", "seed": -1, "n": 1, "user": "ann", "logprobs": False,
        "response_format": {"type": "text"}, "stream_options": None, "top_logprobs": None})
    assert status == 200, body
    assert body["usage"]["completion_tokens"] <= 2


@pytest.mark.parametrize("body", [
    {"messages": "Hi"},
    {"messages": []},
    {"messages": [{"role": "wizard", "content": "Hi"}]},
    {"messages": [{"role": "user", "content": 5}]},
    [1, 2, 3],
])
def test_malformed_messages_are_400(server, body):
    status, _, reply = server.post("/v1/chat/completions", body)
    assert_error(status, reply, 400)


def test_a_prompt_longer_than_the_context_is_400(server):
    status, _, body = server.post("/v1/chat/completions", chat("word " * 400, max_tokens=2))
    assert_error(status, body, 400, code="context_length_exceeded")
    status, _, body = server.post("/v1/completions", {"prompt": "word " * 400, "max_tokens": 2})
    assert_error(status, body, 400, code="context_length_exceeded")
    assert_still_serving(server)


def test_a_body_over_the_limit_is_413_before_it_is_read(server):
    status, _, body = server.post("/v1/chat/completions", chat("x" * (2 * BODY_LIMIT)))
    assert_error(status, body, 413, code="request_too_large")
    assert_still_serving(server)


def test_a_chunked_body_over_the_limit_is_413_while_it_arrives(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=JOIN_S)
    try:
        # no Content-Length: the limit can only be enforced while the chunks arrive
        chunks = (b"x" * 1024 for _ in range(8))
        conn.request("POST", "/v1/chat/completions", body=chunks, encode_chunked=True,
                     headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        assert_error(resp.status, json.loads(resp.read()), 413)
    finally:
        conn.close()
    assert_still_serving(server)


def test_all_slots_busy_is_429_with_retry_after(server, pool):
    with pool.acquire():  # the only slot, held by the test
        status, headers, body = server.post("/v1/chat/completions", chat("Hi", max_tokens=2))
        assert_error(status, body, 429, code="slots_busy")
        assert headers["retry-after"] == "1"
        status, _, body = server.post("/v1/chat/completions", chat("Hi", max_tokens=2, stream=True))
        assert_error(status, body, 429)  # refused before the stream starts: a status, not an SSE error
    assert_still_serving(server)


def test_a_request_past_the_queue_is_429_while_the_slots_generate():
    with serving(SlotPool(smollm(), 1, 1024), queue=0) as server:
        # no max_tokens: counting fills the context, far longer than this test takes
        sock = send_raw(server.port, "/v1/completions", {**COUNTING, "stream": True})
        try:
            received = b""
            while b"data:" not in received:  # the only slot is generating
                received += sock.recv(4096)
            status, headers, body = server.post("/v1/completions", {"prompt": "Hi", "max_tokens": 2})
            assert "--queue 0" in assert_error(status, body, 429, code="slots_busy")["message"]
            assert headers["retry-after"] == "1"
        finally:
            sock.close()


async def test_waiting_requests_take_their_turn_in_order_and_past_the_queue_get_429():
    admission = Admission(slots=1, queue=2)
    await admission.enter()  # generating
    second = asyncio.create_task(admission.enter())
    third = asyncio.create_task(admission.enter())
    await asyncio.sleep(0)  # let both reach the semaphore (a scheduling step, not a wait for time)
    with pytest.raises(ApiError) as refused:
        await admission.enter()
    assert refused.value.status == 429
    admission.leave()
    await asyncio.wait_for(second, JOIN_S)
    assert not third.done()
    admission.leave()
    await asyncio.wait_for(third, JOIN_S)


class FailingSession:
    """Starts a reply, then fails as the engine reports a failure: with an ErrorEvent."""

    turn_stops = ()

    def generate_ids(self, ids, settings, cancel, extra_stops=()):
        yield Started(prompt_tokens=len(ids), reused_tokens=0, n_ctx=128)
        yield ErrorEvent("engine error: RuntimeError: boom")


class FailingPool:
    def __init__(self, pool: SlotPool):
        self.model, self.sessions = pool.model, pool.sessions

    @contextmanager
    def acquire(self, prompt_ids=None):
        yield FailingSession()


def test_an_engine_failure_is_500_or_an_error_chunk_and_the_server_goes_on(pool):
    with serving(FailingPool(pool), queue=1) as server:
        status, _, body = server.post("/v1/chat/completions", chat("Hi", max_tokens=2))
        assert "boom" in assert_error(status, body, 500, code="engine_error")["message"]
        status, _, body = server.post("/v1/chat/completions", chat("Hi", max_tokens=2, stream=True))
        assert status == 200  # the stream had started: the error can only come inside it
        data = sse_data(body)
        assert json.loads(data[-2])["error"]["code"] == "engine_error" and data[-1] == "[DONE]"


def test_unknown_model_unknown_path_and_wrong_method(server):
    status, _, body = server.post("/v1/chat/completions", {**chat("Hi"), "model": "gpt-4o"})
    assert_error(status, body, 404, param="model", code="model_not_found")
    status, _, body = server.request("GET", "/v1/nothing")
    assert_error(status, body, 404)
    status, _, body = server.request("GET", "/v1/chat/completions")
    assert_error(status, body, 405)


def test_while_the_model_loads_requests_get_503_and_models_still_lists():
    server = RunningServer(create_app(ModelHost())).start()
    try:
        status, _, body = server.post("/v1/chat/completions", chat("Hi"))
        assert_error(status, body, 503, code="model_loading")
        status, _, body = server.request("GET", "/health")
        assert_error(status, body, 503)
        status, _, body = server.request("GET", "/v1/models")
        assert status == 200 and body["object"] == "list"
    finally:
        server.stop()


def test_with_a_key_every_request_needs_it_compared_whole():
    with serving(SlotPool(smollm(), 1, 128), api_key="s3cret") as server:
        for headers in ({}, {"Authorization": "Bearer s3cre"}, {"Authorization": "Bearer s3cret-and-more"},
                        {"Authorization": "Basic s3cret"}):
            status, resp_headers, body = server.request("GET", "/v1/models", headers=headers)
            assert_error(status, body, 401, code="invalid_api_key")
            assert resp_headers["www-authenticate"] == "Bearer"
        status, _, body = server.post("/v1/chat/completions", chat("Hi", max_tokens=2))
        assert status == 401
        status, _, _ = server.request("GET", "/v1/models", headers={"Authorization": "Bearer s3cret"})
        assert status == 200


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_that_disconnects_mid_reply_frees_its_slot_within_a_token(stream):
    observed = ObservedPool(SlotPool(smollm(), 1, 512))
    # queue 1: the next request may arrive before the finished job hands back its turn
    with serving(observed, queue=1) as server:
        sock = send_raw(server.port, "/v1/completions", {**COUNTING, "max_tokens": MAX_TOKENS, "stream": stream})
        if stream:
            received = b""
            while b"data:" not in received:  # the stream has started: the slot is generating
                received += sock.recv(4096)
        else:
            assert observed.acquired.wait(JOIN_S)
        sock.close()
        assert observed.released.wait(JOIN_S), "the slot was never released"
        assert observed.generated_at_release[0] < MAX_TOKENS
        # the one slot is free again: a new request is answered
        status, _, reply = server.post("/v1/completions", {"prompt": "Hi", "max_tokens": 2, "stream": True})
        assert status == 200
        assert sse_data(reply)[-1] == "[DONE]"
