"""One line of live numbers: speed, downloads, context meter, memory,
backend, model.

While a reply streams, decode speed is measured with the App's injectable
clock until the engine reports its own ``Stats``; after the reply the
engine's numbers are shown: the prompt's tokens and how many of them the KV
cache already held (``prompt 221 (214 cached)``), and rates only over work
actually done: prefill tok/s over the tokens evaluated, only when there
were enough of them to measure (a regenerate may evaluate one). With
speculative decoding the rate is the effective one (tokens per second of
decoding, guesses kept included) and the share of guesses kept follows it.
"""

from __future__ import annotations

from typing import Callable

from textual.content import Content
from textual.widgets import Static

from chord_core.events import Stats

METER_WIDTH = 10
# Below this many evaluated prompt tokens a prefill rate measures the one-off
# cost of a forward pass (the output layer over the whole vocabulary), not
# prompt processing: "prefill 1 tok/s" after a regenerate. No rate is shown.
PREFILL_RATE_MIN_TOKENS = 16


def guesses_kept(stats: Stats) -> str:
    """Speculative decoding's share of guessed tokens the model kept (its tok/s is then the effective rate)."""
    return f"kept {stats.acceptance:.0%} of {stats.draft_proposed} guesses"


def meter(used: int, size: int, width: int = METER_WIDTH) -> str:
    """A text bar; pure characters so it reads the same under NO_COLOR."""
    if size <= 0:
        return "·" * width
    filled = min(width, round(width * used / size))
    return "█" * filled + "░" * (width - filled)


class StatusBar(Static):
    def __init__(self, clock: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self._clock = clock
        self.model = ""
        self.memory_mb: float | None = None
        self.state = "no model"
        self.n_past = 0
        self.n_ctx = 0
        self.stats: Stats | None = None
        self.reused_tokens = 0  # of the last prompt, already in the KV cache
        self.backend = ""  # e.g. "cpu·2t"
        self.download = ""  # the App's running download, e.g. "↓ model.gguf 42%"
        self._streaming = False
        self._first_token_at: float | None = None
        self._tokens = 0

    # -- updates from the app ------------------------------------------------
    def set_state(self, state: str) -> None:
        self.state = state
        self.refresh_text()

    def set_model(self, name: str, n_ctx: int = 0) -> None:
        self.model = name
        self.n_ctx = n_ctx or self.n_ctx
        self.refresh_text()

    def reset_reply(self) -> None:
        """Forget the last reply's numbers: another conversation or model is shown."""
        self._streaming = False
        self.stats = None
        self._first_token_at = None
        self._tokens = 0
        self.n_past = 0
        self.refresh_text()

    def show_context(self, n_past: int) -> None:
        """A conversation opened from the store: the context its last reply left in use."""
        self.n_past = n_past
        self.refresh_text()

    def set_memory(self, mb: float | None) -> None:
        self.memory_mb = mb
        self.refresh_text()

    def set_backend(self, backend: str, threads: int) -> None:
        self.backend = f"{backend}·{threads}t" if backend and threads else backend
        self.refresh_text()

    def set_download(self, text: str) -> None:
        self.download = text
        self.refresh_text()

    def reply_started(self, prompt_tokens: int, n_ctx: int, reused_tokens: int = 0) -> None:
        self._streaming = True
        self.stats = None
        self.reused_tokens = reused_tokens
        self._first_token_at = None
        self._tokens = 0
        self.n_past = prompt_tokens
        self.n_ctx = n_ctx or self.n_ctx
        self.state = "generating"
        self.refresh_text()

    def tokens_arrived(self, count: int) -> None:
        if count <= 0:
            return
        if self._first_token_at is None:
            self._first_token_at = self._clock()
        self._tokens += count
        self.n_past += count
        self.refresh_text()

    def set_stats(self, stats: Stats) -> None:
        self.stats = stats
        self.n_past, self.n_ctx = stats.n_past, stats.n_ctx
        self.refresh_text()

    def reply_finished(self, reason: str, stats: Stats | None) -> None:
        self._streaming = False
        if stats is not None:
            self.set_stats(stats)
        self.state = {"cancelled": "stopped"}.get(reason, "ready")
        self.refresh_text()

    # -- rendering -------------------------------------------------------------
    def live_decode_rate(self) -> float | None:
        # Intervals after the first token: its latency is prefill, not decode.
        if self._first_token_at is None or self._tokens <= 1:
            return None
        elapsed = self._clock() - self._first_token_at
        return (self._tokens - 1) / elapsed if elapsed > 0 else None

    def text(self, width: int | None = None) -> str:
        """The status line; shorter forms when ``width`` columns are too few."""
        for compact in (False, True):
            parts = self._parts(compact)
            line = " │ ".join(parts)
            if width is None or len(line) <= width:
                return line
        return " │ ".join(parts[:-1])  # still too long: the model name is also in the panel

    def _parts(self, compact: bool) -> list[str]:
        parts = [self.state]
        if self._streaming:
            rate = self.stats.decode_tok_s if self.stats else self.live_decode_rate()
            parts[0] += f" {rate:.1f} tok/s" if rate else " …"
            if self.stats is not None and self.stats.acceptance is not None:
                parts[0] += f" · {guesses_kept(self.stats)}"
        elif self.stats is not None and self.stats.generated > 0:  # a reply stopped before its first token has no rates
            parts.append(self._reply_numbers(self.stats, compact))
        if self.download:
            parts.append(self.download)
        if self.n_ctx:
            bar = meter(self.n_past, self.n_ctx, METER_WIDTH // 2 if compact else METER_WIDTH)
            parts.append(f"ctx {bar} {self.n_past}/{self.n_ctx}")
        if self.memory_mb is not None:
            parts.append(f"{self.memory_mb:.0f} MB")
        if self.backend and not compact:  # narrow: the model's name matters more
            parts.append(self.backend)
        if self.model:
            parts.append(self.model)
        return parts

    def _reply_numbers(self, s: Stats, compact: bool) -> str:
        """The finished reply's numbers, each over the work it names."""
        decode = f"{s.decode_tok_s:.1f} tok/s" if s.decode_tok_s > 0 else ""  # one token: no decode step to time
        if decode and s.acceptance is not None:
            decode += f" · {guesses_kept(s)}"
        ttft = f"ttft {s.ttft_s:.2f}s"
        if compact:
            return " · ".join(p for p in (decode, ttft) if p)
        cached = min(self.reused_tokens, s.prompt_tokens)
        prompt = f"prompt {s.prompt_tokens}" + (f" ({cached} cached)" if cached else "")
        evaluated = s.prompt_tokens - cached
        prefill = f"prefill {s.prefill_tok_s:.0f} tok/s" if evaluated >= PREFILL_RATE_MIN_TOKENS else ""
        return " · ".join(p for p in (decode, prompt, prefill, ttft) if p)

    def refresh_text(self) -> None:
        width = self.content_size.width if self.is_mounted and self.content_size.width else None
        self.update(Content(self.text(width)))

    def on_resize(self) -> None:
        self.refresh_text()
