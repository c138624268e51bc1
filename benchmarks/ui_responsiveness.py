"""How fast the chat UI answers while a reply streams: key-press latency and
the largest gap between ticks of a 20 ms timer, on the fake engine.

    python benchmarks/ui_responsiveness.py [--token-delay 0.002] [--refresh 0.1]

A number, not a test: tests never assert on the clock (a busy CI machine
would fail them); tests/test_tui_chat.py checks that typing lands at all.
A UI blocked by the engine stalls for the whole stream (seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from textual import events  # noqa: E402

from fake_engine import FakeEngine, make_app, send, settle, start  # noqa: E402


async def measure(token_delay: float, refresh: float) -> tuple[list[float], list[float]]:
    reply = "\n\n".join(" ".join(f"word{p}_{i}" for i in range(30)) for p in range(40))
    engine = FakeEngine(replies=[reply], token_delay=token_delay)
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp), engine, stream_refresh_s=refresh)
        async with app.run_test(size=(120, 40)) as pilot:
            await start(app, pilot)
            ticks: list[float] = []
            timer = app.set_interval(0.02, lambda: ticks.append(time.perf_counter()))
            await send(app, pilot, "go")
            chat_input = app.chat.chat_input
            chat_input.focus()
            presses = []
            for key in "typing":
                before, t0 = chat_input.text, time.perf_counter()
                chat_input.post_message(events.Key(key, key))
                while chat_input.text == before and time.perf_counter() - t0 < 5:
                    await asyncio.sleep(0.002)
                presses.append(time.perf_counter() - t0)
            await settle(app, pilot, rounds=500)
            timer.stop()
    return presses, [b - a for a, b in zip(ticks, ticks[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token-delay", type=float, default=0.002, help="seconds between fake tokens")
    parser.add_argument("--refresh", type=float, default=0.1, help="the app's redraw interval while streaming")
    args = parser.parse_args()
    presses, gaps = asyncio.run(measure(args.token_delay, args.refresh))
    print(f"key press: max {max(presses) * 1000:.0f} ms, mean {sum(presses) / len(presses) * 1000:.0f} ms")
    print(f"20 ms timer: max gap {max(gaps) * 1000:.0f} ms over {len(gaps)} ticks")


if __name__ == "__main__":
    main()
