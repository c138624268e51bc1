"""End to end: the real app on the real engine and SmolLM2-135M-Instruct.

One pilot run through launch's pieces (CoreEngine, ConversationStore,
AppConfig) with nothing faked: the model loads, a message is sent, the
reply streams from the NumPy engine through the chat template and lands in
the view, the status bar and the database.
"""

from __future__ import annotations

from fake_engine import make_app, settle

from chord_core.sampling import SamplerSettings
from chord_tui.config import AppConfig
from chord_tui.core_engine import CoreEngine
from chord_tui.widgets.message_view import MessageView


async def test_chat_with_smollm2_end_to_end(tmp_path, smollm_path):
    config = AppConfig(path=tmp_path / "config.toml", sampler=SamplerSettings(temperature=0.0, max_tokens=12))
    app = make_app(tmp_path, CoreEngine(n_ctx=1024), config=config, model=str(smollm_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot, rounds=400)
        info = app.engine.info
        assert info is not None and info.architecture == "llama"
        assert info.template_source == "GGUF tokenizer.chat_template"
        app.chat.chat_input.focus()
        app.chat.chat_input.text = "What is the capital of France?"
        await pilot.press("enter")
        await settle(app, pilot, rounds=2000)
        msgs = app.chat.state.store.load(app.chat.state.conversation_id).messages
        assert [m.role for m in msgs] == ["user", "assistant"]
        reply = msgs[1]
        assert reply.content.strip(), "the model said nothing"
        assert reply.record["finish_reason"] in ("stop", "length")
        assert reply.record["template"] == "GGUF tokenizer.chat_template"
        assert reply.record["settings"]["temperature"] == 0.0
        assert reply.record["model"]["architecture"] == "llama"
        views = app.chat.query(MessageView)
        assert views[-1].content == reply.content
        status = app.chat.status.text()
        assert "tok/s" in status and "/1024" in status.replace(" ", "")
        # the reply is the engine's greedy answer, the same as a direct session gives
        from chord_core.session import ChatSession

        session = ChatSession(app.engine._session.model, n_ctx=1024)
        direct = [e for e in session.stream([{"role": "user", "content": "What is the capital of France?"}],
                                            SamplerSettings(temperature=0.0, max_tokens=12))][-1]
        assert direct.text == reply.content
