"""End to end: a remote model served by ``chord-chat serve`` (SmolLM2, in-process, loopback),
used by ``chord-chat run`` and by the TUI through CoreEngine, a few tokens each."""

from __future__ import annotations

import json

import pytest
from fake_engine import make_app, settle
from server_harness import serving, smollm, smollm_path

from chord_core.library import add_remote, list_remotes, remove_remote
from chord_core.sampling import SamplerSettings
from chord_core.slots import SlotPool
from chord_tui.cli import main
from chord_tui.config import AppConfig
from chord_tui.core_engine import CoreEngine
from chord_tui.widgets.message_view import MessageView

PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module")
def served():
    """SmolLM2 behind chord-chat serve, and a library entry for it (removed after the module)."""
    with serving(SlotPool(smollm(), 1, 512)) as server:
        add_remote("served-smollm", server.base_url)
        try:
            yield server
        finally:
            for entry in list_remotes():
                remove_remote(entry.name)


def run_json(capsys, model: str) -> dict:
    code = main(["run", model, PROMPT, "--temperature", "0", "-n", "8", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_run_on_a_remote_entry_answers_as_the_local_model_does(capsys, served):
    remote = run_json(capsys, "served-smollm")
    local = run_json(capsys, str(smollm_path()))
    assert remote["text"].strip() and remote["text"] == local["text"]  # greedy: the same engine, the same tokens
    assert remote["remote"] == served.base_url + "/v1" and remote["finish_reason"] == local["finish_reason"]
    assert remote["completion_tokens"] == len(local["token_ids"])
    assert remote["prompt_tokens"] == local["prompt_tokens"]  # from the server's usage


async def test_the_tui_chats_with_a_model_on_chord_chat_serve(tmp_path, served):
    config = AppConfig(path=tmp_path / "config.toml", sampler=SamplerSettings(temperature=0.0, max_tokens=8))
    app = make_app(tmp_path, CoreEngine(), config=config, model="served-smollm")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot, rounds=200)
        assert app.engine.info is not None and app.engine.info.n_ctx == 512  # the server's slot context
        app.chat.chat_input.focus()
        app.chat.chat_input.text = PROMPT
        await pilot.press("enter")
        await settle(app, pilot, rounds=2000)
        reply = app.chat.query(MessageView).last()
        assert reply.content.strip() and not reply.note.startswith("error")
        assert reply.tokens and all(0.0 < t[1] <= 1.0 for t in reply.tokens)  # serve sends logprobs
        status = app.chat.status.text()
        assert "tok/s" in status and "served-smollm" in status
