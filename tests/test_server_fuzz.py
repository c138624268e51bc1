"""Server fuzzing (issue 13): schemathesis against an OpenAPI description of
``chord-chat serve``'s endpoints, plus hand-written hostile requests (huge
max_tokens, negative and NaN numbers, 1,000 messages, unknown roles, a
slow-loris client). No 500s, no hang, memory back to its level after."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import psutil
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from chord_core.server.served_model import SlotPool
from server_harness import JOIN_S, MODEL_ID, chat, serving, smollm

_NUMBER = {"type": "number"}
_INTEGER = {"type": "integer"}
_SAMPLING = {"model": {"type": "string"}, "max_tokens": _INTEGER, "temperature": _NUMBER, "top_p": _NUMBER,
             "top_k": _INTEGER, "min_p": _NUMBER, "seed": _INTEGER, "stream": {"type": "boolean"},
             "stop": {"type": "array", "items": {"type": "string"}}, "logprobs": {"type": "boolean"},
             "top_logprobs": _INTEGER}
_MESSAGE = {"type": "object", "required": ["role", "content"],
            "properties": {"role": {"type": "string"}, "content": {"type": "string"}}}


def _post(properties: dict, required: list[str]) -> dict:
    body = {"type": "object", "required": required, "properties": {**_SAMPLING, **properties}}
    return {"post": {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                     "responses": {"200": {"description": "a reply"}}}}


OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "chord-chat serve", "version": "1"},
    "paths": {
        "/v1/chat/completions": _post({"messages": {"type": "array", "items": _MESSAGE}}, ["messages"]),
        "/v1/completions": _post({"prompt": {"type": "string"}}, ["prompt"]),
        "/v1/models": {"get": {"responses": {"200": {"description": "the models"}}}},
        "/health": {"get": {"responses": {"200": {"description": "ok"}}}},
    },
}
schema = schemathesis.openapi.from_dict(OPENAPI)


@pytest.fixture(scope="module")
def server():
    with serving(SlotPool(smollm(), 1, 64)) as running:  # a small context bounds every reply
        yield running


@schema.parametrize()
@settings(max_examples=12, derandomize=True, database=None, deadline=timedelta(seconds=60),
          suppress_health_check=list(HealthCheck))
def test_schemathesis_requests_never_get_a_server_error(case, server):
    response = case.call(base_url=server.base_url, timeout=JOIN_S)
    assert response.status_code < 500, response.text[:500]


HOSTILE = {
    "huge max_tokens": chat("Hi", max_tokens=10**12, temperature=0),
    "negative max_tokens": chat("Hi", max_tokens=-5),
    "negative temperature": chat("Hi", temperature=-1.0, max_tokens=2),
    "huge seed": chat("Hi", seed=2**80, max_tokens=2),
    "1,000 messages": {"model": MODEL_ID, "max_tokens": 2,
                       "messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"}
                                    for i in range(1001)]},
    "unknown role": {"model": MODEL_ID, "messages": [{"role": "wizard", "content": "Hi"}]},
    # found by schemathesis: an unhashable role was looked up in the role table, a 500
    "role is an object": {"model": MODEL_ID, "messages": [{"role": {}, "content": "Hi"}]},
    "role is a list": {"model": MODEL_ID, "messages": [{"role": ["user"], "content": "Hi"}]},
    "content not text": {"model": MODEL_ID, "messages": [{"role": "user", "content": {"a": [1, 2]}}]},
    "messages not a list": {"model": MODEL_ID, "messages": "Hi"},
    "lone surrogate": {"model": MODEL_ID, "messages": [{"role": "user", "content": "\ud800"}]},
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_request_is_answered_without_a_server_error(server, name):
    status, _, body = server.post("/v1/chat/completions", HOSTILE[name])
    assert status < 500, body
    assert status == 200 or set(body) == {"error"}, body


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinite_numbers_are_refused(server, value):
    raw = ('{"model": "%s", "messages": [{"role": "user", "content": "Hi"}], "temperature": %s}'
           % (MODEL_ID, value)).encode()
    status, _, body = server.request("POST", "/v1/chat/completions", raw=raw)
    assert status == 400, body


def test_slow_loris_client_does_not_hold_up_others_and_memory_comes_back(server):
    process = psutil.Process()
    before = process.memory_info().rss
    stalled = []
    for _ in range(20):  # headers promised, body never sent
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=JOIN_S)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000000\r\n\r\n{\"mod")
        stalled.append(sock)
    try:
        status, _, body = server.post("/v1/chat/completions", chat("Hi", max_tokens=2, temperature=0))
        assert status == 200, body
        for _ in range(5):
            assert server.post("/v1/completions", {"prompt": "1, 2,", "max_tokens": 2})[0] == 200
    finally:
        for sock in stalled:
            sock.close()
    status, _, _ = server.request("GET", "/health")
    assert status == 200
    assert process.memory_info().rss < before + 100 * 1024 * 1024


def test_json_nesting_bomb_is_a_client_error(server):
    # found here: json.loads' RecursionError on 100,000 nested arrays was a 500
    raw = ("[" * 100_000 + "]" * 100_000).encode()
    status, _, body = server.request("POST", "/v1/chat/completions", raw=raw)
    assert 400 <= status < 500, body
    assert json.dumps(body)
