"""Downloads belong to the App: leaving the models screen does not stop one,
a second pull waits its turn, progress shows in the status bar, and only the
cancel key (or the command palette) stops a download."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

from fake_engine import FakeEngine, make_app, settle, wait_until
from textual.widgets import Input

from chord_tui.screens.models import ModelsScreen

SIZE = (120, 40)
TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def open_models(app, pilot) -> ModelsScreen:
    await settle(app, pilot)
    await pilot.press("f4")
    await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen))
    return app.screen


async def ask_for_pull(pilot, screen: ModelsScreen, source: str) -> None:
    field = screen.query_one("#pull-source", Input)
    field.value = source
    field.focus()
    await pilot.press("enter")


async def test_leaving_the_models_screen_does_not_stop_a_download(tmp_path):
    engine = FakeEngine(pull_gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        await ask_for_pull(pilot, screen, "hf:someone/repo/kept.gguf")
        engine.release_pull(3)  # 0%, 25%, 50%
        await wait_until(pilot, lambda: "↓ kept.gguf 50%" in app.chat.status.text())
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.chat)
        assert app.downloads.active
        engine.release_pull(2)
        await settle(app, pilot)
        assert "kept" in [m.name for m in engine.models]
        assert any("Downloaded kept" in n for n in notes(app))
        assert "↓" not in app.chat.status.text()
        screen = await open_models(app, pilot)  # the library shows it
        await settle(app, pilot)
        assert "kept" in [e.name for e in screen.entries]


async def test_reopening_the_models_screen_shows_the_running_download(tmp_path):
    engine = FakeEngine(pull_gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        await ask_for_pull(pilot, screen, "hf:someone/repo/big.gguf")
        engine.release_pull(2)
        await wait_until(pilot, lambda: "25%" in app.chat.status.text())
        await pilot.press("escape")
        await pilot.press("f4")  # no settle: the download is still running
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        screen = app.screen
        assert screen.query_one("#pull-row").display
        assert "big.gguf: 1.0 MB / 4.0 MB" in str(screen.query_one("#pull-label").render())
        engine.release_pull(3)
        await settle(app, pilot)


async def test_the_cancel_key_stops_the_download_and_the_queue(tmp_path):
    engine = FakeEngine(pull_gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        await ask_for_pull(pilot, screen, "hf:someone/repo/first.gguf")
        await ask_for_pull(pilot, screen, "hf:someone/repo/second.gguf")
        await wait_until(pilot, lambda: "+1 queued" in app.chat.status.text())
        screen.table.focus()
        await pilot.press("c")
        await settle(app, pilot)
        assert engine.pulls == ["hf:someone/repo/first.gguf"]  # the queued one never started
        assert not {"first", "second"} & {m.name for m in engine.models}
        assert any("Cancelled the download of hf:someone/repo/first.gguf" in n for n in notes(app))
        assert not any("Could not pull" in n for n in notes(app))
        assert not app.downloads.active and "↓" not in app.chat.status.text()
        assert not screen.query_one("#pull-row").display


async def test_the_command_palette_cancels_a_download(tmp_path):
    engine = FakeEngine(pull_gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        await ask_for_pull(pilot, screen, "hf:someone/repo/first.gguf")
        await wait_until(pilot, lambda: engine.pulls == ["hf:someone/repo/first.gguf"])
        await pilot.press("escape")
        cancel = next(callback for title, _, callback in app.commands() if title == "Cancel download")
        cancel()
        await settle(app, pilot)
        assert not app.downloads.active
        assert "first" not in {m.name for m in engine.models}
        assert any("Cancelled the download" in n for n in notes(app))


async def test_the_same_source_twice_is_not_downloaded_twice(tmp_path):
    engine = FakeEngine(pull_gated=True)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_models(app, pilot)
        await ask_for_pull(pilot, screen, "hf:someone/repo/first.gguf")
        await ask_for_pull(pilot, screen, "hf:someone/repo/first.gguf")
        await wait_until(pilot, lambda: any("already being downloaded" in n for n in notes(app)))
        assert app.downloads.waiting == []
        engine.release_pull(5)
        await settle(app, pilot)
        assert engine.pulls == ["hf:someone/repo/first.gguf"]


# -- the real engine, a real server ---------------------------------------------------------------

class HalfThenWait(http.server.BaseHTTPRequestHandler):
    """Sends half the file, then the rest once ``go`` is set."""

    body = b""
    go = threading.Event()
    half_sent = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        half = len(self.body) // 2
        self.wfile.write(self.body[:half])
        self.wfile.flush()
        self.half_sent.set()
        if self.go.wait(60):
            self.wfile.write(self.body[half:])


async def test_a_real_pull_from_a_local_server_outlives_the_models_screen(tmp_path, monkeypatch):
    from chord_core import library
    from chord_tui.core_engine import CoreEngine

    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))
    # no packaged models: discovery would unpack the demo model into this fresh library
    monkeypatch.setattr("chord_core.library.discovery.installed_distributions", lambda: [])
    handler = type("Handler", (HalfThenWait,), {"body": (TINY / "tiny-llama-Q4_0.gguf").read_bytes(),
                                                 "go": threading.Event(), "half_sent": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/models/served.gguf"
    app = make_app(tmp_path, CoreEngine(load_options={"backend": "numpy"}), model=str(TINY / "tiny-llama-F32.gguf"))
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_models(app, pilot)
            await ask_for_pull(pilot, screen, url)
            await wait_until(pilot, lambda: handler.half_sent.is_set() and app.downloads.current is not None
                             and app.downloads.current.done_bytes > 0, rounds=3000)
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is app.chat)
            assert app.downloads.active
            handler.go.set()
            await wait_until(pilot, lambda: not app.downloads.active, rounds=3000)
            assert any("Downloaded served" in n for n in notes(app))
            assert "served" in [e.name for e in library.list_entries()]
    finally:
        handler.go.set()
        server.shutdown()
        server.server_close()
