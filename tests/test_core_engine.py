"""CoreEngine, the Engine protocol on chord_core: a load waits for the reply
in flight (load vs generate), the context size stays within the training
context, the KV memory it reports is what the cache takes, and the backend
and threads are the loaded model's."""

from __future__ import annotations

import threading
from pathlib import Path

from chord_core.events import Done, TokenEvent
from chord_core.sampling import LiveSettings, SamplerSettings
from chord_tui.core_engine import CoreEngine

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
LLAMA, GEMMA = TINY / "tiny-llama-Q4_0.gguf", TINY / "tiny-gemma3-F32.gguf"


def numpy_engine(**kw) -> CoreEngine:
    return CoreEngine(load_options={"backend": "numpy"}, **kw)


def test_a_load_waits_for_the_reply_in_flight():
    engine = numpy_engine()
    engine.load(str(LLAMA))
    reply = engine.stream_reply([{"role": "user", "content": "hi"}],
                                LiveSettings(SamplerSettings(max_tokens=8, seed=1, temperature=0.0)), threading.Event())
    first = next(e for e in reply if isinstance(e, TokenEvent))  # the reply is under way
    loaded = threading.Event()
    loader = threading.Thread(target=lambda: (engine.load(str(GEMMA)), loaded.set()), daemon=True)
    loader.start()
    # the load cannot swap the model out while the reply streams: it waits for the reply's end
    assert not loaded.wait(0.5)
    assert engine.info.path == str(LLAMA)
    rest = list(reply)
    assert first.id >= 0 and isinstance(rest[-1], Done)
    assert loaded.wait(60)
    assert engine.info.path == str(GEMMA)
    assert rest[-1].record["model"]["path"] == str(LLAMA)  # every token came from the model it started on


def test_the_context_stays_within_the_training_context_and_its_kv_memory_is_what_the_cache_takes():
    engine = numpy_engine()
    info = engine.load(str(LLAMA), n_ctx=4096)  # trained with 512
    assert info.n_ctx_train == 512 and info.n_ctx == 512
    info = engine.set_context(256)
    assert info.n_ctx == 256 and engine._session.n_ctx == 256
    cache = engine._session.cache
    cache.reserve(256)  # the cache grows lazily; full, it takes what the side panel says
    assert cache.nbytes() == info.kv_bytes_per_token * 256
    assert numpy_engine().load(str(LLAMA)).n_ctx == 512  # no size asked: the model's default


def test_backend_and_threads_are_the_loaded_models():
    engine = numpy_engine()
    assert engine.backend == "" and engine.threads == 0  # nothing loaded
    engine.load(str(LLAMA))
    assert engine.backend == "numpy" and engine.threads == engine._model.threads >= 1


def test_a_base_model_is_reported_as_one(tmp_path):
    from gguf_rewrite import write_base_model

    engine = numpy_engine()
    assert engine.load(str(TINY / "tiny-llama-F32.gguf")).has_chat_template
    assert engine.load(str(write_base_model(TINY / "tiny-llama-F32.gguf", tmp_path / "base.gguf"))).has_chat_template is False
