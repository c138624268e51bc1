"""`chord-chat web` in a real browser: headless Chromium (Debian's package)
driven by Playwright, the real engine on SmolLM2.

The page draws the terminal with xterm.js on a canvas, so there is no DOM
text to read; the test reads what the page received instead: textual-serve
relays the app's terminal output over one websocket, and `pyte` (a terminal
emulator) turns those bytes into the screen the user sees. Every wait is on
an event (a line on the server's stdout, a page selector, a websocket frame)
with a generous timeout; nothing sleeps.
"""

from __future__ import annotations

import codecs
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyte
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright

from chord_core.model import Model
from chord_core.sampling import SamplerSettings
from chord_core.session import ChatSession
from chord_tui.web import READY_LINE

SCREENSHOT = Path(__file__).parent.parent / "screenshots" / "web.png"
PROMPT = "What is the capital of France?"
MAX_TOKENS = 12
STARTUP_TIMEOUT_S = 60  # a busy 2-core CI machine: generous, never a speed bar
REPLY_TIMEOUT_S = 120


def chromium_executable() -> str | None:
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer:
    """`chord-chat web` as a subprocess in its own process group (the app
    processes it starts per browser tab are in it too)."""

    def __init__(self, model: Path, home: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, CHORD_HOME=str(home))
        self.log = log
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chord_tui", "web", str(model), "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=env, start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self, timeout: float) -> None:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"chord-chat web did not serve within {timeout} s; stderr:\n"
                                     f"{self.log.read_text()}") from None
            if line is None:
                raise AssertionError(f"chord-chat web exited ({self.proc.wait()}) before serving; stderr:\n"
                                     f"{self.log.read_text()}")
            if line.startswith(READY_LINE):
                return

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever is left of its group: app processes of tabs never closed
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()


class TerminalScreen:
    """The app's screen as the page's websocket delivered it."""

    def __init__(self, ws_url: str):
        query = parse_qs(urlparse(ws_url).query)
        self.screen = pyte.Screen(int(query["width"][0]), int(query["height"][0]))
        self.stream = pyte.Stream(self.screen)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def on_sent(self, payload) -> None:
        # the page tells the app its size; the app redraws at that size
        if isinstance(payload, str) and payload.startswith('["resize"'):
            size = json.loads(payload)[1]
            self.screen.resize(size["height"], size["width"])

    def on_received(self, payload) -> None:
        if isinstance(payload, bytes):  # terminal output; text frames are textual-serve's own messages
            self.stream.feed(self.decoder.decode(payload))

    def text(self) -> str:
        return "\n".join(self.screen.display)


def wait_for_screen(ws, screen: TerminalScreen, pattern: str, timeout_s: float, present: bool = True) -> None:
    """Wait for frames until the screen matches ``pattern`` (``present=False``: no longer matches)."""
    deadline = time.monotonic() + timeout_s
    while bool(re.search(pattern, screen.text())) != present:
        left_ms = (deadline - time.monotonic()) * 1000
        try:
            if left_ms <= 0:
                raise PlaywrightTimeoutError("deadline")
            ws.wait_for_event("framereceived", timeout=left_ms)
        except PlaywrightTimeoutError:
            raise AssertionError(f"the screen never {'showed' if present else 'lost'} {pattern!r}; "
                                 f"it shows:\n{screen.text()}") from None


@pytest.fixture
def chromium() -> str:
    path = chromium_executable()
    if path is None:
        pytest.skip("the browser test needs Chromium from the OS (apt-get install chromium); .ci/run installs it")
    return path


@pytest.fixture
def web_home(tmp_path) -> Path:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(
        f"context_size = 512\n[sampler]\ntemperature = 0.0\nmax_tokens = {MAX_TOKENS}\n")
    return home


@pytest.fixture
def web_server(smollm_path, web_home, tmp_path):
    server = WebServer(smollm_path, web_home, tmp_path / "web.log")
    try:
        server.wait_ready(STARTUP_TIMEOUT_S)
        yield server
    finally:
        server.stop()


def greedy_reply(model_path: Path, prompt: str) -> str:
    model = Model.load(model_path)
    try:
        session = ChatSession(model, n_ctx=512)
        events = list(session.stream([{"role": "user", "content": prompt}],
                                     SamplerSettings(temperature=0.0, max_tokens=MAX_TOKENS)))
        return events[-1].text
    finally:
        model.close()


def test_web_ui_streams_a_reply_in_chromium(chromium, web_server, smollm_path):
    expected = greedy_reply(smollm_path, PROMPT)
    first_words = " ".join(expected.split()[:3])
    assert first_words, "the model's greedy reply is empty"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            screens: dict[str, TerminalScreen] = {}

            def follow(ws) -> None:  # on the websocket's creation, so no frame goes unseen
                screens[ws.url] = screen = TerminalScreen(ws.url)
                ws.on("framesent", screen.on_sent)
                ws.on("framereceived", screen.on_received)

            page.on("websocket", follow)
            with page.expect_websocket(timeout=STARTUP_TIMEOUT_S * 1000) as ws_info:
                page.goto(web_server.url, wait_until="domcontentloaded")
            ws = ws_info.value
            screen = screens[ws.url]
            # the page shows the terminal once its first output arrived
            page.wait_for_selector("body.-first-byte", timeout=STARTUP_TIMEOUT_S * 1000)
            wait_for_screen(ws, screen, r"ready │ ctx .*(?i:smollm2)", STARTUP_TIMEOUT_S)

            page.locator(".xterm-helper-textarea").focus()
            page.keyboard.type(PROMPT)
            page.keyboard.press("Enter")

            wait_for_screen(ws, screen, re.escape(first_words), REPLY_TIMEOUT_S)
            wait_for_screen(ws, screen, r"ready │ \d+\.\d tok/s", REPLY_TIMEOUT_S)
            assert PROMPT in screen.text()
            # the "Loaded …" notice times out on its own; the screenshot is clearer without it
            wait_for_screen(ws, screen, "Loaded ", REPLY_TIMEOUT_S, present=False)
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
