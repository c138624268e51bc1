"""chord-chat serve under load on loopback: 64 requests, 8 at a time, on 4
slots with room in the queue for the other 4. Every request completes (a
refusal would be a clean 429, checked as such), none hangs, and the
process's memory comes back to its level after a warm-up within 10%."""

from __future__ import annotations

import gc
import json
from concurrent.futures import ThreadPoolExecutor, wait

import psutil

from chord_core.slots import SlotPool
from server_harness import JOIN_S, chat, serving, smollm, sse_data

N_REQUESTS = 64
AT_ONCE = 8
SLOTS = 4
QUEUE = AT_ONCE - SLOTS  # every client waits its turn: a 429 here would be a request lost
MAX_TOKENS = 4


def one_request(server, i: int) -> tuple[int, str]:
    """(status, what came back) for request ``i``; streamed every other time."""
    stream = i % 2 == 0
    status, _, body = server.post("/v1/chat/completions",
                                  chat(f"Count to {i % 10}.", max_tokens=MAX_TOKENS, temperature=0.7, seed=i,
                                       stream=stream))
    if status == 429:
        assert body["error"]["code"] == "slots_busy", body
        return status, "busy"
    assert status == 200, body
    if stream:
        data = sse_data(body)
        assert data[-1] == "[DONE]", data
        chunks = [json.loads(d) for d in data[:-1]]
        assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length"), chunks[-1]
        return status, "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert body["usage"]["completion_tokens"] <= MAX_TOKENS
    return status, body["choices"][0]["message"]["content"]


def run_batch(server, count: int) -> list[tuple[int, str]]:
    with ThreadPoolExecutor(AT_ONCE) as clients:
        futures = [clients.submit(one_request, server, i) for i in range(count)]
        done, not_done = wait(futures, timeout=JOIN_S * 4)
        assert not not_done, f"{len(not_done)} requests hung"
        return [f.result() for f in futures]


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def test_64_requests_8_at_a_time_all_answer_cleanly_and_memory_comes_back():
    with serving(SlotPool(smollm(), SLOTS, 512), queue=QUEUE) as server:
        run_batch(server, 2 * AT_ONCE)  # warm-up: caches grown, threads started, code paths taken
        before = rss()
        results = run_batch(server, N_REQUESTS)
        after = rss()
        statuses = [status for status, _ in results]
        assert statuses == [200] * N_REQUESTS, statuses
        assert all(text for status, text in results if status == 200)
        assert after <= before * 1.10, f"RSS {before / 2**20:.0f} MiB -> {after / 2**20:.0f} MiB"
        status, _, body = server.request("GET", "/health")
        assert status == 200, body
