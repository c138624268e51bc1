"""A long GGUF fuzzing campaign over the tiny fixtures (issue 13).

    nice -n 19 python scripts/fuzz_gguf.py --cases 20000 [--seed N] [--backend numpy|cpu] [--save DIR]

Each case mutates header, metadata or tensor-info fields of a fixture
(tests/gguf_fuzz.py), loads it, tokenizes and evaluates two tokens. Prints
the figures: cases per fixture and outcome, the slowest case, the largest
traced allocation over the file's size, and every distinct defect (another
exception than ChordError, a multi-line message, or an allocation beyond
the file's size and margin) with the mutation that caused it. With
``--save`` each defect's file is written there, to replay it.
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from gguf_fuzz import gguf_mutations, run_case  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--save", type=Path, help="write each distinct defect's file here")
    parser.add_argument("--address-space-gb", type=float, default=3.0,
                        help="RLIMIT_AS for this process: a runaway allocation is a MemoryError (a defect), "
                             "not the OOM killer")
    args = parser.parse_args()
    limit = int(args.address_space_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    outcomes: collections.Counter = collections.Counter()
    defects: dict[str, tuple[str, list[str], str]] = {}
    slowest = (0.0, "")
    worst_ratio = (0.0, "")
    work = Path(tempfile.mkdtemp(prefix="chord-fuzz-"))
    print(f"cases run in {work}", file=sys.stderr)
    started = time.perf_counter()

    @seed(args.seed)
    @settings(max_examples=args.cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(gguf_mutations())
    def case(mutation) -> None:
        nonlocal slowest, worst_ratio
        name, data, notes = mutation
        (work / "current.txt").write_text(f"{name} {notes}\n")  # what was running if the process dies
        outcome = run_case(data, work / "case.gguf", backend=args.backend)
        outcomes[(name, outcome.kind)] += 1
        if outcome.seconds > slowest[0]:
            slowest = (outcome.seconds, f"{name} {notes}")
        ratio = outcome.peak_bytes / max(len(data), 1)
        if ratio > worst_ratio[0]:
            worst_ratio = (ratio, f"{outcome.peak_bytes:,} B for {len(data):,} B: {name} {notes}")
        if outcome.kind == "defect":
            key = outcome.detail.split(":")[0] + outcome.detail[-60:]
            if key not in defects:
                defects[key] = (name, notes, outcome.detail)
                print(f"defect: {name} {notes}: {outcome.detail}", flush=True)
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    (args.save / f"defect-{len(defects)}.gguf").write_bytes(data)
        total = sum(outcomes.values())
        if total % 1000 == 0:
            print(f"{total} cases, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    case()
    total = sum(outcomes.values())
    print(f"\n{total} cases in {time.perf_counter() - started:.0f} s (seed {args.seed}, backend {args.backend})")
    for name in sorted({n for n, _ in outcomes}):
        counts = {kind: outcomes[(name, kind)] for kind in ("loaded", "refused", "defect")}
        print(f"  {name:26s} " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"slowest case: {slowest[0]:.2f} s ({slowest[1]})")
    print(f"largest traced allocation per file byte: {worst_ratio[0]:.1f} ({worst_ratio[1]})")
    print(f"distinct defects: {len(defects)}")
    for name, notes, detail in defects.values():
        print(f"  {name} {notes}: {detail}")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
