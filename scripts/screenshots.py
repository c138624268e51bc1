"""Regenerate screenshots/*.svg from the scripted scenes.

    python scripts/screenshots.py                 # fake engine (deterministic)
    python scripts/screenshots.py --real MODEL    # the real engine and a model: real-*.svg
    python scripts/screenshots.py chat help       # only some scenes

The scenes are the ones the snapshot tests use (tests/fake_engine.py), so
the pictures show what the tests check.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_engine import SCENES, make_app, scene_engine  # noqa: E402

OUT = ROOT / "screenshots"


async def shoot(name: str, out: Path, real_model: str | None) -> Path:
    script, size = SCENES[name]
    with tempfile.TemporaryDirectory() as tmp:
        if real_model:
            from chord_tui.core_engine import CoreEngine

            engine = CoreEngine()
            app = make_app(Path(tmp), engine, model=real_model, stream_refresh_s=0.1)  # the app's own pacing
        else:
            app = make_app(Path(tmp), scene_engine(name))
        async with app.run_test(size=size) as pilot:
            await script(pilot)
            prefix = "real-" if real_model else ""
            path = app.save_screenshot(filename=f"{prefix}{name}.svg", path=str(out))
        app.store.close()
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenes", nargs="*", default=list(SCENES),
                        help=f"which scenes (default all): {', '.join(SCENES)}")
    parser.add_argument("--real", metavar="MODEL", help="use the real engine with this library model or .gguf path")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.real and "streaming" in args.scenes:
        args.scenes.remove("streaming")  # needs the fake engine's gate
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.scenes:
        if name not in SCENES:
            parser.error(f"unknown scene {name!r}")
        print(asyncio.run(shoot(name, args.out, args.real)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
