"""A tokenizer fuzzing campaign beside llama.cpp (issue 13).

    nice -n 19 python scripts/fuzz_tokenizer.py SMOLLM2.gguf GEMMA.gguf --cases 5000 \
        [--llama-python /work/llamavenv/bin/python]

Hostile text (tests/tokenizer_fuzz.py) goes through chord's tokenizer and,
in a worker process running llama-cpp-python (``--llama-python``: an
interpreter that has it), through llama.cpp's. Per model it counts cases,
token ids equal to llama.cpp's, round trips on each side, chord's slowest
case, and defects: an exception other than the one-line ChordError for
text that is not UTF-8, a round trip that llama.cpp makes and chord does
not, or one that the rule in tests/tokenizer_fuzz.py gets wrong.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from tokenizer_fuzz import has_surrogate, hostile_texts, llama_cpp_round_trips  # noqa: E402

from chord_core.errors import ChordError  # noqa: E402
from chord_core.gguf_file import GGUFFile  # noqa: E402
from chord_core.tokenizer import Tokenizer  # noqa: E402

_WORKER = r"""
import json, sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
for line in sys.stdin:
    text = json.loads(line)
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    back = llm.detokenize(ids).decode("utf-8", "replace")
    print(json.dumps({"ids": ids, "text": back}), flush=True)
"""


class LlamaCpp:
    def __init__(self, python: str, model: Path):
        self.proc = subprocess.Popen([python, "-c", _WORKER, str(model)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def tokenize(self, text: str) -> tuple[list[int], str]:
        self.proc.stdin.write(json.dumps(text) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        return answer["ids"], answer["text"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def campaign(model: Path, cases: int, seed_value: int, python: str) -> dict:
    with GGUFFile(model) as gguf:
        tok = Tokenizer.from_metadata(dict(gguf.metadata), path=str(model))
    spm = tok.vocab.model == "llama"
    llama = LlamaCpp(python, model)
    figures = {"cases": 0, "not UTF-8 (refused)": 0, "ids equal to llama.cpp": 0, "llama.cpp round-trips": 0,
               "chord round-trips": 0, "slowest s": 0.0}
    defects: list[str] = []
    differences: list[str] = []  # other ids than llama.cpp's: reported, not a defect of this issue

    @seed(seed_value)
    @settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(hostile_texts())
    def case(text: str) -> None:
        figures["cases"] += 1
        start = time.perf_counter()
        try:
            ids = tok.encode(text, add_special=False)
            back = tok.decode(ids)
        except ChordError as err:
            if not has_surrogate(text) or "\n" in str(err):
                defects.append(f"{text[:40]!r}: ChordError {err}")
            figures["not UTF-8 (refused)"] += 1
            return
        except Exception as err:  # what the campaign is here to find
            defects.append(f"{text[:40]!r}: {type(err).__name__}: {err}")
            return
        finally:
            figures["slowest s"] = max(figures["slowest s"], time.perf_counter() - start)
        if has_surrogate(text):
            defects.append(f"{text[:40]!r}: text that is not UTF-8 was tokenized")
            return
        llama_ids, llama_back = llama.tokenize(text)
        figures["ids equal to llama.cpp"] += ids == llama_ids
        if ids != llama_ids and len(differences) < 10:
            differences.append(f"{text[:40]!r}: chord {ids[:12]} llama.cpp {llama_ids[:12]}")
        figures["llama.cpp round-trips"] += llama_back == text
        figures["chord round-trips"] += back == text
        if llama_back == text and back != text:
            defects.append(f"{text[:40]!r}: llama.cpp round-trips it, chord gives {back[:40]!r}")
        if (llama_back == text) != llama_cpp_round_trips(text, spm):
            defects.append(f"{text[:40]!r}: the round-trip rule is wrong here (llama.cpp: {llama_back == text})")

    try:
        case()
    finally:
        llama.close()
    figures["defects"] = defects
    figures["differences"] = differences
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--llama-python", default="/work/llamavenv/bin/python")
    args = parser.parse_args()
    found = 0
    for model in args.models:
        started = time.perf_counter()
        figures = campaign(model, args.cases, args.seed, args.llama_python)
        defects = figures.pop("defects")
        differences = figures.pop("differences")
        found += len(defects)
        print(f"{model.name}: {time.perf_counter() - started:.0f} s")
        for key, value in figures.items():
            print(f"  {key:24s} {value:.3f}" if isinstance(value, float) else f"  {key:24s} {value}")
        print(f"  defects                  {len(defects)}")
        for line in defects[:20]:
            print(f"    {line}")
        for line in differences:
            print(f"    ids differ: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
