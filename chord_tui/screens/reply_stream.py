"""Streaming a reply into the chat screen: the worker and its message handler.

A mixin of ChatScreen, kept apart because it is the one place where threads
meet the UI. ``_generate`` runs in a thread worker: it drives the engine's
generator and pushes every event into the generation's ``EventBuffer``,
posting a ``ReplyEvents`` message only when the buffer was empty. The engine
never waits for the UI (no ``call_from_thread``), and ``on_reply_events``
drains whatever has arrived, so however fast tokens come the UI handles one
message per batch and never falls behind. Esc sets the generation's cancel
event; the engine then ends with ``Done(reason="cancelled")`` and the partial
reply is kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from textual import work

from chord_core.events import Done, ErrorEvent, Notice, Started, Stats, TokenEvent
from chord_tui.messages import ReplyEvents
from chord_tui.conversation_state import Generation


@dataclass
class RedrawPacer:
    """When the streaming reply may next be redrawn (one per reply)."""

    next_redraw: float = 0.0  # monotonic time before which the view is not redrawn
    timer_set: bool = False  # a timer will deliver the buffered events


class ReplyStreaming:
    """Needs from the screen: state, conversation, status, notify, app."""

    _pacer: RedrawPacer  # set by start(), so a stale timer cannot pace the next reply

    async def start(self, gen: Generation) -> None:
        self._pacer = RedrawPacer()
        view = self.conversation.by_id(gen.message_id)
        if view is not None:
            view.start_stream()
        self.conversation.scroll_end(animate=False)
        self.conversation.anchor()
        self.status.set_state("prefill")
        self._generate(gen)

    @work(thread=True, group="reply", exit_on_error=False)
    def _generate(self, gen: Generation) -> None:
        """Runs in a thread: drive the engine's generator, buffer its events.

        The end of a reply always posts a message: the buffer may already be
        signalled and held back for a redraw timer, and the end is not held."""
        ended = False
        try:
            for event in self.app.engine.stream_reply(gen.messages, self.app.live_settings, gen.cancel,
                                                      continue_reply=gen.mode == "continue"):
                is_end = isinstance(event, (Done, ErrorEvent))
                ended = ended or is_end
                if gen.buffer.put(event) or is_end:
                    self.post_message(ReplyEvents(gen.id))
        except Exception as err:  # the engine failed: report it, keep the app alive
            ended = True
            gen.buffer.put(ErrorEvent(f"{type(err).__name__}: {err}"))
            self.post_message(ReplyEvents(gen.id))
        if not ended:
            gen.buffer.put(ErrorEvent("the engine stopped without finishing the reply"))
            self.post_message(ReplyEvents(gen.id))

    async def on_reply_events(self, message: ReplyEvents) -> None:
        gen = self.state.generation
        if gen is None or gen.id != message.generation_id:
            return
        if self._hold_for_refresh(gen):
            return
        tokens: list[TokenEvent] = []
        for event in gen.buffer.drain():
            if gen.finished:
                break
            if isinstance(event, TokenEvent):
                tokens.append(event)
                continue
            if tokens:
                await self._add_tokens(gen, tokens)
                tokens = []
            if isinstance(event, Started):
                self.status.reply_started(event.prompt_tokens, event.n_ctx, event.reused_tokens)
            elif isinstance(event, Stats):
                self.status.set_stats(event)
            elif isinstance(event, Notice):
                self.notify(event.message)
            elif isinstance(event, Done):
                await self._finish(gen, event)
            elif isinstance(event, ErrorEvent):
                await self._finish(gen, None, event.message)
        if tokens and not gen.finished:
            await self._add_tokens(gen, tokens)

    def _hold_for_refresh(self, gen: Generation) -> bool:
        """Redraw a streaming reply at most every ``app.stream_refresh_s``.

        The engine thread and the UI share the GIL: a redraw per token would
        take the engine's Python time away from it and halve its tok/s. Held
        events stay in the buffer (so the worker posts no more messages) and
        a timer delivers them together; the end of a reply is never held."""
        interval = self.app.stream_refresh_s
        if not interval or gen.buffer.holds(Done, ErrorEvent):
            return False
        pacer, now = self._pacer, time.monotonic()
        if now >= pacer.next_redraw:
            pacer.next_redraw = now + interval
            return False
        if not pacer.timer_set:
            pacer.timer_set = True

            def due() -> None:
                pacer.timer_set = False
                pacer.next_redraw = 0.0
                self.post_message(ReplyEvents(gen.id))

            self.set_timer(pacer.next_redraw - now, due)
        return True

    async def _add_tokens(self, gen: Generation, events: list[TokenEvent]) -> None:
        text, records = self.state.add_tokens(gen, events)
        view = self.conversation.by_id(gen.message_id)
        if view is not None:
            await view.append(text, records)
        self.status.tokens_arrived(len(records))
        if gen.storage_error and not gen.storage_error_shown:
            gen.storage_error_shown = True
            self.notify(f"{gen.storage_error}. The reply goes on, shown but not stored; it is tried again "
                        f"when it ends.", title="Reply not saved", severity="error", timeout=15)

    async def _finish(self, gen: Generation, done: Done | None, error: str = "") -> None:
        note = self.state.finish(gen, done, error)
        if gen.storage_error:
            self.notify(f"{gen.storage_error}. The reply is {note}.", title="Reply not saved", severity="error",
                        timeout=15)
        view = self.conversation.by_id(gen.message_id)
        if view is not None:
            await view.finish_stream(note)
        self.status.reply_finished(done.reason if done else "error", done.stats if done else None)
        self.app.update_memory()
        if error:
            self.notify(error, title="Generation failed", severity="error", timeout=10)
        elif gen.mode == "continue" and done is not None and done.reason == "stop" and not gen.tokens:
            # the model ended its turn again at once; without a word Ctrl+G seems broken
            self.notify("The model ended this reply again at once: it has nothing to add. "
                        "Ctrl+R regenerates the reply instead.", title="Nothing to continue", timeout=8)
        await self.show_state()

    def action_stop(self) -> None:
        gen = self.state.generation
        if gen is not None:
            gen.cancel.set()
            self.status.set_state("stopping")

    def stop_generation(self, closing: bool = False) -> None:
        """Called when the model changes, or with ``closing`` when the app
        closes: then the partial reply is recorded as stopped right away."""
        gen = self.state.generation
        if gen is None:
            return
        gen.cancel.set()
        if closing and not gen.finished:
            self.state.abandon(gen)
