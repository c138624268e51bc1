"""A deterministic stand-in for the engine, for the TUI tests.

It streams a scripted reply token by token with made-up but repeatable
probabilities and top-5 alternatives, and it records what it was asked and
which sampler settings it saw before each token, so a test can prove that
a slider moved mid-reply reached the very next token.

Pacing: ``token_delay`` waits on the cancel event between tokens (so Esc
cuts the wait short); ``gated=True`` makes every token wait for
``release(n)`` so a test can stop the stream at an exact point.

Threads: ``make_app`` tells the engine which thread the App runs on; every
protocol method then refuses to run there (raises, and records the call in
``ui_thread_calls``), so a test fails when the UI calls the engine
directly instead of from a worker. Test code reads the fake's state
(``models``, ``calls``, ``fake_render``), not its protocol methods.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from chord_core.errors import ChordError
from chord_core.events import Done, ErrorEvent, Started, Stats, TokenAlternative, TokenEvent
from chord_core.sampling import LiveSettings, SamplerSettings
from chord_tui.engine import LoadedModelInfo, ModelEntry

DEFAULT_REPLY = (
    "Hello! Here is some **Markdown**:\n\n"
    "- one\n- two\n\n"
    "```python\nprint('hi')\n```\n\n"
    "Anything else?"
)
SPECIALS = ("<|im_start|>", "<|im_end|>")


def split_tokens(text: str) -> list[str]:
    """Words with their leading whitespace, newlines on their own."""
    return re.findall(r"\n|[ \t]*[^\s]+|[ \t]+", text)


def prob_of(index: int) -> float:
    return round(0.97 - (index * 37 % 90) / 100, 3) if index % 7 else 0.08


KV_BYTES_PER_TOKEN = 46_080  # SmolLM2-135M: 30 layers x 3 KV heads x (64 + 64) x 4 bytes


def fake_render(messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """The fake's chat template (chatml)."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def fake_pieces(text: str) -> list[str]:
    """The fake's tokens of a rendered prompt: specials, words, newlines."""
    parts = re.split(r"(<\|im_start\|>|<\|im_end\|>)", text)
    return [p for part in parts if part for p in ([part] if part in SPECIALS else split_tokens(part))]


def off_ui_thread(method):
    """Marks a protocol method that must not run on the App's thread."""
    @functools.wraps(method)
    def checked(self, *args, **kw):
        if self.app_thread is not None and threading.get_ident() == self.app_thread:
            self.ui_thread_calls.append(method.__name__)
            raise AssertionError(f"engine.{method.__name__} called on the UI thread")
        return method(self, *args, **kw)
    return checked


def entry(name: str, **kw) -> ModelEntry:
    base = dict(name=name, path=f"/models/{name}.gguf", size_bytes=90_000_000, architecture="llama",
                n_params=135_000_000, quant="Q4_1", context_length=2048, template_source="gguf",
                source="file", metadata={"general.name": name})
    base.update(kw)
    return ModelEntry(**base)


@dataclass
class FakeEngine:
    replies: list[str] = field(default_factory=lambda: [DEFAULT_REPLY])
    token_delay: float = 0.0
    gated: bool = False
    n_ctx: int = 2048
    memory: float = 321.0
    fail_load: dict[str, str] = field(default_factory=dict)  # name -> reason
    fail_stream: str | None = None
    pull_gated: bool = False
    load_gated: bool = False  # load() waits for release_load() halfway through
    reused_tokens: int = 0  # what Started reports as already in the KV cache
    guesses: tuple[int, int] = (0, 0)  # speculative decoding's (proposed, kept) in the final Stats
    draft_mismatch: tuple[str, ...] = ()  # draft models set_speculation refuses (another vocabulary)
    app_thread: int | None = None  # set by make_app: protocol methods refuse to run on it
    models: list[ModelEntry] = field(default_factory=lambda: [
        entry("smollm2-135m", is_default=True),
        entry("gemma-3-270m", architecture="gemma3", n_params=270_000_000, quant="Q4_K_M", context_length=32768,
              template_source="fallback: gemma", source="package", has_chat_template=False),
    ])

    def __post_init__(self) -> None:
        self.calls: list[dict] = []  # one per stream_reply: messages, continue_reply
        self.seen_settings: list[SamplerSettings] = []  # one per token produced
        self.loads: list[str] = []
        self.pulls: list[str] = []
        self._info: LoadedModelInfo | None = None
        self._gate = threading.Semaphore(0)
        self._pull_gate = threading.Semaphore(0)
        self._load_gate = threading.Semaphore(0)
        self.streaming = threading.Event()  # set while stream_reply runs
        self.stream_count = 0
        self.ui_thread_calls: list[str] = []  # protocol methods that were called on the App's thread
        self.contexts: list[int | None] = []  # n_ctx asked for, per load and set_context
        self.speculation_calls: list[tuple[bool, str | None]] = []
        self._speculation: tuple[bool, str | None] = (True, None)

    # -- test controls -------------------------------------------------------------------
    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self._gate.release()

    def release_load(self) -> None:
        self._load_gate.release()

    def release_pull(self, n: int = 1) -> None:
        for _ in range(n):
            self._pull_gate.release()

    # -- library -----------------------------------------------------------------------------
    @off_ui_thread
    def list_models(self) -> list[ModelEntry]:
        return list(self.models)

    @off_ui_thread
    def default_model(self) -> str | None:
        return next((m.name for m in self.models if m.is_default), None)

    @off_ui_thread
    def set_default(self, name: str) -> None:
        self._find(name)
        self.models = [replace(m, is_default=m.name == name) for m in self.models]

    def _find(self, name: str) -> ModelEntry:
        for m in self.models:
            if m.name == name or m.path == name:
                return m
        raise ChordError(f"no model called {name!r}")

    @off_ui_thread
    def add_model(self, path: str, name: str | None = None) -> ModelEntry:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ChordError(f"{path}: no such file")
        if p.read_bytes()[:4] != b"GGUF":
            raise ChordError(f"{path}: not a GGUF file")
        new = entry(name or p.stem, path=str(p), size_bytes=p.stat().st_size, source=f"file:{p}")
        self.models.append(new)
        return new

    @off_ui_thread
    def pull_model(self, source: str, progress: Callable[[int, int | None], None],
                   cancel: threading.Event) -> ModelEntry:
        self.pulls.append(source)
        total = 4_000_000
        for i in range(5):
            if self.pull_gated:
                while not self._pull_gate.acquire(timeout=0.02):
                    if cancel.is_set():
                        raise ChordError("pull cancelled")
            progress(i * total // 4, total)
        name = source.rsplit("/", 1)[-1].removesuffix(".gguf")
        new = entry(name, source=source, size_bytes=total)
        self.models.append(new)
        return new

    @off_ui_thread
    def remove_model(self, name: str) -> None:
        self._find(name)
        self.models = [m for m in self.models if m.name != name]

    # -- the loaded model ---------------------------------------------------------------------
    @off_ui_thread
    def load(self, name_or_path: str, progress=None, n_ctx: int | None = None,
             template: str | None = None) -> LoadedModelInfo:
        self.loads.append(name_or_path)
        self.contexts.append(n_ctx)
        if progress:
            progress(0.5, "weights")
        if self.load_gated:
            self._load_gate.acquire()
        if name_or_path in self.fail_load:
            raise ChordError(self.fail_load[name_or_path])
        m = self._find(name_or_path)
        if progress:
            progress(1.0, "ready")
        if n_ctx:
            self.n_ctx = min(n_ctx, m.context_length)
        self._info = LoadedModelInfo(name=m.name, path=m.path, architecture=m.architecture, n_params=m.n_params,
                                     quant=m.quant, n_ctx=self.n_ctx, template_source=f"GGUF chat template ({m.name})",
                                     fingerprint="f" * 16, has_chat_template=m.has_chat_template,
                                     n_ctx_train=m.context_length, kv_bytes_per_token=KV_BYTES_PER_TOKEN)
        return self._info

    @off_ui_thread
    def set_context(self, n_ctx: int | None) -> LoadedModelInfo:
        self.contexts.append(n_ctx)
        if self._info is None:
            raise ChordError("no model loaded")
        self.n_ctx = min(n_ctx, self._info.n_ctx_train) if n_ctx else 2048
        self._info = replace(self._info, n_ctx=self.n_ctx)
        return self._info

    @property
    def backend(self) -> str:
        return "cpu"

    @property
    def threads(self) -> int:
        return 2

    @property
    def info(self) -> LoadedModelInfo | None:
        return self._info

    @off_ui_thread
    def render_prompt(self, messages: list[dict[str, str]],
                      add_generation_prompt: bool = True) -> tuple[str, list[int]]:
        text = fake_render(messages, add_generation_prompt)
        self._pieces = fake_pieces(text)
        return text, list(range(len(self._pieces)))

    @off_ui_thread
    def token_pieces(self, ids: list[int]) -> list[tuple[str, bool]]:
        return [(self._pieces[i], self._pieces[i] in SPECIALS) for i in ids]

    def stream_reply(self, messages: list[dict[str, str]], settings: LiveSettings,
                     cancel: threading.Event, continue_reply: bool = False) -> Iterator:
        if self.app_thread is not None and threading.get_ident() == self.app_thread:
            self.ui_thread_calls.append("stream_reply")
            raise AssertionError("engine.stream_reply iterated on the UI thread")
        self.calls.append({"messages": [dict(m) for m in messages], "continue_reply": continue_reply})
        reply = self.replies[min(self.stream_count, len(self.replies) - 1)]
        self.stream_count += 1
        prompt_tokens = sum(len(split_tokens(m["content"])) + 4 for m in messages)
        self.streaming.set()
        try:
            yield Started(prompt_tokens=prompt_tokens, reused_tokens=min(self.reused_tokens, prompt_tokens),
                          n_ctx=self.n_ctx)
            if self.fail_stream:
                yield ErrorEvent(self.fail_stream)
                return
            text, ids, reason = "", [], "stop"
            for index, piece in enumerate(split_tokens(reply)):
                if self.gated:
                    while not self._gate.acquire(timeout=0.02):
                        if cancel.is_set():
                            break
                elif self.token_delay:
                    cancel.wait(self.token_delay)
                if cancel.is_set():
                    reason = "cancelled"
                    break
                snap = settings.snapshot()
                self.seen_settings.append(snap)
                if snap.max_tokens is not None and index >= snap.max_tokens:
                    reason = "length"
                    break
                prob = prob_of(index)
                rest = (1.0 - prob) / 4
                alts = (TokenAlternative(index, piece, prob),) + tuple(
                    TokenAlternative(1000 + k, f" alt{k}", round(rest / (k + 1), 4)) for k in range(1, 5))
                text += piece
                ids.append(index)
                yield TokenEvent(id=index, piece=piece, text=piece, prob=prob, alternatives=alts)
            stats = Stats(prompt_tokens=prompt_tokens, prefill_tok_s=512.0, decode_tok_s=42.5, ttft_s=0.125,
                          generated=len(ids), n_past=prompt_tokens + len(ids), n_ctx=self.n_ctx,
                          draft_proposed=self.guesses[0], draft_accepted=self.guesses[1])
            yield stats
            yield Done(reason=reason, text=text, token_ids=tuple(ids), stats=stats, record={"seed": 1234})
        finally:
            self.streaming.clear()

    @property
    def speculation(self) -> tuple[bool, str | None]:
        return self._speculation

    @off_ui_thread
    def set_speculation(self, lookup: bool, draft: str | None) -> str | None:
        self.speculation_calls.append((lookup, draft))
        if draft in self.draft_mismatch:
            raise ChordError(f"draft model {draft}: its vocabulary differs from the model's at token 0")
        self._speculation = (lookup, draft)
        return None

    @off_ui_thread
    def memory_mb(self) -> float:
        return self.memory


# -- building a test App ------------------------------------------------------------------------

class StepClock:
    """A clock that only moves when told, for stable tok/s in snapshots."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_app(tmp_path: Path, engine: FakeEngine | None = None, **kw):
    """A ChordApp on ``engine`` with its own store, config and export dir under ``tmp_path``."""
    from chord_tui.app import ChordApp
    from chord_tui.config import AppConfig
    from chord_tui.storage import ConversationStore

    engine = engine if engine is not None else FakeEngine()
    if isinstance(engine, FakeEngine):
        engine.app_thread = threading.get_ident()  # the App runs its event loop on this thread
    config = kw.pop("config", None) or AppConfig(path=tmp_path / "config.toml")
    store = kw.pop("store", None) or ConversationStore(tmp_path / "conversations.db")
    return ChordApp(engine=engine, store=store, config=config, clock=kw.pop("clock", StepClock()),
                    export_dir=tmp_path / "exports", cursor_blink=False,
                    stream_refresh_s=kw.pop("stream_refresh_s", 0.0), **kw)


async def settle(app, pilot, rounds: int = 50) -> None:
    """Let workers finish and the UI drain their messages (no wall-clock waits)."""
    # not the dialog workers, which wait for input
    background = ("reply", "load", "pull", "add", "find-default", "models", "library", "memory", "prompt", "context",
                  "speculation", "draft-choices")
    for _ in range(rounds):
        running = [w for w in app.workers if w.group in background]
        if running:  # an empty list would mean "every worker", a dialog's too
            await app.workers.wait_for_complete(running)
        await pilot.pause()
        busy = any(w.group in background and not w.is_finished for w in app.workers)
        if app.chat.state.generation is None and not app.loading_model and not busy:
            break
    await pilot.pause()


async def start(app, pilot):
    """Wait for the startup model load; the fake engine always has a model."""
    await settle(app, pilot)  # the startup model load
    assert app.engine.info is not None


async def send(app, pilot, text: str) -> None:
    app.chat.chat_input.focus()
    app.chat.chat_input.text = text
    await pilot.press("enter")


def stored(app):
    return app.chat.state.store.load(app.chat.state.conversation_id).messages


async def wait_until(pilot, predicate, rounds: int = 400) -> None:
    """Pump the event loop until ``predicate()`` holds; fail after ``rounds`` pauses."""
    for _ in range(rounds):
        if predicate():
            return
        await pilot.pause(0.01)
    raise AssertionError("condition never became true")


# -- scenes shared by the snapshot tests and scripts/screenshots.py -----------------------------

SCENE_REPLY = (
    "A **binary search** halves the range each step:\n\n"
    "```python\ndef bsearch(xs, x):\n    lo, hi = 0, len(xs)\n    while lo < hi:\n"
    "        mid = (lo + hi) // 2\n        if xs[mid] < x:\n            lo = mid + 1\n"
    "        else:\n            hi = mid\n    return lo\n```\n\n"
    "It runs in *O(log n)* time."
)


async def _say(app, pilot, text: str) -> None:
    app.chat.chat_input.text = text
    app.chat.chat_input.focus()
    await pilot.press("enter")
    await settle(app, pilot, rounds=2000)


async def scene_chat(pilot) -> None:
    """Two saved chats; the open one has a finished reply with a code block."""
    app = pilot.app
    await settle(app, pilot)
    await _say(app, pilot, "What is a haiku?")
    await pilot.press("ctrl+n")
    await _say(app, pilot, "Show me a binary search in Python")
    app.chat.chat_input.text = "And in Rust?"
    app.clear_notifications()
    await pilot.pause()


async def scene_streaming(pilot) -> None:
    """A reply caught mid-stream (needs a gated FakeEngine): live tok/s."""
    app = pilot.app
    await settle(app, pilot)
    app.chat.chat_input.text = "Show me a binary search in Python"
    await pilot.press("enter")
    app.engine.release(24)
    await wait_until(pilot, lambda: app.chat.state.generation is not None
                     and len(app.chat.state.generation.tokens) == 24)
    app.clock.advance(0.5)  # 23 tokens after the first in 0.5 s of the fake clock
    app.chat.status.refresh_text()
    app.clear_notifications()
    await pilot.pause()


async def scene_inspector(pilot) -> None:
    from chord_tui.widgets.message_view import MessageView
    from chord_tui.widgets.token_view import TokenView

    app = pilot.app
    await settle(app, pilot)
    await _say(app, pilot, "Show me a binary search in Python")
    await pilot.press("ctrl+t")
    tokens = app.chat.query(MessageView).last().query_one(TokenView)
    tokens.focus()
    await pilot.press("right", "right", "right")
    app.clear_notifications()
    await pilot.pause()


async def scene_models(pilot) -> None:
    app = pilot.app
    await settle(app, pilot)
    await pilot.press("f4")
    await pilot.press("down")
    app.clear_notifications()
    await pilot.pause()


async def scene_help(pilot) -> None:
    app = pilot.app
    await settle(app, pilot)
    await pilot.press("f1")
    app.clear_notifications()
    await pilot.pause()


async def scene_narrow(pilot) -> None:
    app = pilot.app
    await settle(app, pilot)
    await _say(app, pilot, "Show me a binary search in Python")
    app.clear_notifications()
    await pilot.pause()


def scene_engine(name: str) -> FakeEngine:
    if name == "chat":
        return FakeEngine(replies=["A haiku is a short poem: three lines of 5, 7 and 5 syllables.", SCENE_REPLY])
    return FakeEngine(replies=[SCENE_REPLY], gated=name == "streaming")


# name -> (pilot script, terminal size)
SCENES = {
    "chat": (scene_chat, (120, 32)),
    "streaming": (scene_streaming, (100, 30)),
    "inspector": (scene_inspector, (100, 30)),
    "models": (scene_models, (100, 30)),
    "help": (scene_help, (100, 30)),
    "narrow": (scene_narrow, (80, 24)),
}
