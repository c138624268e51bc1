"""Switching models gives the old one back: its weights, KV cache, session
and file mapping, in the engine adapter and through the app, however many
times the user switches. Checked by what still refers to the old Model (a
weak reference, dead once it is released) and by its mapping being closed,
not by timing the process's RSS."""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

from fake_engine import make_app, send, settle

from chord_core.sampling import LiveSettings, SamplerSettings
from chord_tui.config import AppConfig
from chord_tui.core_engine import CoreEngine

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
MODELS = [TINY / "tiny-llama-Q4_0.gguf", TINY / "tiny-gemma3-F32.gguf"]


def numpy_engine() -> CoreEngine:
    return CoreEngine(load_options={"backend": "numpy"})


def reply(engine: CoreEngine) -> None:
    events = list(engine.stream_reply([{"role": "user", "content": "hi"}],
                                      LiveSettings(SamplerSettings(max_tokens=3, seed=1)), threading.Event()))
    assert type(events[-1]).__name__ == "Done"


def test_each_switch_closes_and_frees_the_previous_model():
    engine = numpy_engine()
    released = []  # (weak reference to an old Model, its file mapping, its KV cache)
    for round_trip in range(3):
        for path in MODELS:
            if engine.info is not None:
                model, session = engine._model, engine._session
                released.append((weakref.ref(model), model.gguf._mm, weakref.ref(session.cache)))
                del model, session
            engine.load(str(path))
            reply(engine)
            # no gc.collect() here: the engine releases the old model itself
            assert all(model() is None and mapping.closed and cache() is None
                       for model, mapping, cache in released), f"round trip {round_trip}: an old model is alive"
    assert len(released) == 5
    assert not engine._model.gguf._mm.closed  # the model in use stays open


def test_a_failed_load_keeps_the_model_in_use(tmp_path):
    engine = numpy_engine()
    engine.load(str(MODELS[0]))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 60)
    try:
        engine.load(str(broken))
    except Exception:
        pass
    else:
        raise AssertionError("a broken file loaded")
    assert engine.info.path == str(MODELS[0])
    reply(engine)


async def test_switching_models_in_the_app_frees_the_old_ones(tmp_path):
    config = AppConfig(path=tmp_path / "config.toml", sampler=SamplerSettings(max_tokens=3, seed=1))
    app = make_app(tmp_path, numpy_engine(), config=config, model=str(MODELS[0]))
    old: list[tuple[weakref.ref, object]] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for path in MODELS[1:] + MODELS + MODELS:  # five switches, a reply on each model
            await send(app, pilot, "hi")
            await settle(app, pilot)
            model = app.engine._model
            old.append((weakref.ref(model), model.gguf._mm))
            del model
            app.load_model(str(path))
            await settle(app, pilot)
            assert app.engine.info.path == str(path)
        # what the screens, workers and messages kept refers to no old model
        alive = [ref() for ref, mapping in old if ref() is not None or not mapping.closed]
        assert alive == [], f"{len(alive)} of {len(old)} old models are still in memory"
