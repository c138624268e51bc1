"""Print the engine's agreement with llama.cpp on every tiny fixture, as the
Markdown table in docs/compatibility.md.

    python scripts/parity_report.py [--backend cpu|numpy]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from chord_core import Model
from chord_core.quants import type_name

TINY = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "reference" / "tiny"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="auto", help="auto, cpu or numpy")
    args = ap.parse_args()
    print("| fixture | architecture | weight types | max abs dlogit / max abs logit | argmax agreement |")
    print("|---|---|---|---|---|")
    for path in sorted(TINY.glob("*.gguf")):
        model = Model.load(path, backend=args.backend)
        ref = np.load(path.with_suffix(".npz"))
        got = model.logits(ref["ids"])
        rel = np.abs(got - ref["logits"]).max() / np.abs(ref["logits"]).max()
        agree = (got.argmax(1) == ref["logits"].argmax(1)).mean()
        types = sorted({type_name(t.ggml_type) for t in model.gguf.tensors.values() if len(t.shape) == 2})
        print(f"| {path.stem} | {model.cfg.arch} | {', '.join(types)} | {rel:.2e} | {agree:.3f} |")


if __name__ == "__main__":
    main()
