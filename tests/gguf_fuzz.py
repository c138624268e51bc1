"""GGUF fuzzing, shared by the CI slice (tests/test_gguf_fuzz.py) and the long
campaign (scripts/fuzz_gguf.py).

``gguf_fields`` walks a GGUF with its own small parser (not chord's reader,
which is what is under test) and lists every field with its offset: the
header's counts, each key and value, string lengths and bytes, array types
and counts, each tensor's name, dims, type and offset. ``gguf_mutations``
is a hypothesis strategy that changes 1-3 of those fields to values that
break readers (0, 1, the type's maximum, 2**31, 2**63, off by one), flips
string bytes into invalid UTF-8, or cuts the file short. ``run_case`` loads
the mutated file, tokenizes and evaluates two tokens, and says how it ended:
a loaded model, a one-line ``ChordError``, or a defect (any other exception,
a multi-line message, or a traced allocation over the file's size plus
``ALLOCATION_MARGIN``).
"""

from __future__ import annotations

import struct
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from chord_core.errors import ChordError
from chord_core.model import Model

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
FIXTURES = ("tiny-llama-F32.gguf", "tiny-llama-Q4_K_M.gguf", "tiny-gemma3-F32.gguf", "tiny-qwen3-F32.gguf")
# Loading dequantizes and repacks weights, and the tokenizer builds its tables:
# a few times the file, plus a fixed margin, is what a sound load may allocate.
ALLOCATION_FACTOR = 8
ALLOCATION_MARGIN = 32 << 20

# what Model.load is told is free: its own estimate refuses a model past it (the traced peak is checked besides)
MEMORY_AVAILABLE = 1 << 30

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class Field:
    group: str  # header, key, value-type, value, string-length, string-bytes, array, tensor-*
    offset: int
    size: int  # bytes; an integer field when it is 1, 2, 4 or 8 and the group is not string-bytes


class _Walker:
    def __init__(self, data: bytes):
        self.data, self.pos, self.fields = data, 0, []

    def int(self, size: int, group: str) -> int:
        value = int.from_bytes(self.data[self.pos:self.pos + size], "little")
        self.fields.append(Field(group, self.pos, size))
        self.pos += size
        return value

    def string(self, group: str) -> None:
        n = self.int(8, f"{group}-length")
        if n:
            self.fields.append(Field(f"{group}-bytes", self.pos, n))
        self.pos += n

    def value(self, vtype: int, group: str) -> None:
        if vtype == _STRING:
            self.string(group)
        elif vtype == _ARRAY:
            inner = self.int(4, "array-type")
            count = self.int(8, "array-count")
            for _ in range(count):
                self.value(inner, "array-item")
        else:
            self.int(_SCALAR_SIZES[vtype], group)


def gguf_fields(data: bytes) -> list[Field]:
    w = _Walker(data)
    w.pos = 4  # the magic
    w.fields.append(Field("header", 0, 4))
    w.int(4, "header")
    n_tensors, n_kv = w.int(8, "header"), w.int(8, "header")
    for _ in range(n_kv):
        w.string("key")
        w.value(w.int(4, "value-type"), "value")
    for _ in range(n_tensors):
        w.string("tensor-name")
        n_dims = w.int(4, "tensor-ndims")
        for _ in range(n_dims):
            w.int(8, "tensor-dim")
        w.int(4, "tensor-type")
        w.int(8, "tensor-offset")
    return w.fields


def _breaking_values(size: int, original: int) -> list[int]:
    top = (1 << (8 * size)) - 1
    values = [0, 1, 2, 3, 4, 7, 8, 13, 31, 32, 255, 256, 0x7FFF, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
              2**62, 2**63 - 1, 2**63, top, top - 1, original + 1, original - 1, original * 2, original + 2**31]
    return sorted({v & top for v in values})


@st.composite
def _field_change(draw, data: bytes, fields: list[Field]) -> tuple[int, bytes]:
    groups = sorted({f.group for f in fields})
    group = draw(st.sampled_from(groups))
    chosen = [f for f in fields if f.group == group]
    field = chosen[draw(st.integers(0, len(chosen) - 1))]
    if group.endswith("-bytes") or field.size not in (1, 2, 4, 8):
        n = min(field.size, 16)
        start = field.offset + draw(st.integers(0, field.size - n))
        return start, draw(st.binary(min_size=1, max_size=n))
    original = int.from_bytes(data[field.offset:field.offset + field.size], "little")
    value = draw(st.one_of(st.sampled_from(_breaking_values(field.size, original)),
                           st.integers(0, (1 << (8 * field.size)) - 1)))
    return field.offset, value.to_bytes(field.size, "little")


@st.composite
def gguf_mutations(draw) -> tuple[str, bytes, list[str]]:
    """(fixture name, mutated bytes, what was changed)."""
    name = draw(st.sampled_from(FIXTURES))
    original = _fixture_bytes(name)
    data = bytearray(original)
    fields = _fixture_fields(name)
    notes = []
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["field", "field", "field", "field", "truncate", "bytes"]))
        if how == "truncate":
            end = draw(st.integers(0, len(data)))
            notes.append(f"truncate at {end}")
            del data[end:]
        elif how == "bytes":
            at = draw(st.integers(0, max(len(data) - 1, 0)))
            new = draw(st.binary(min_size=1, max_size=8))
            notes.append(f"bytes {new.hex()} at {at}")
            data[at:at + len(new)] = new
        else:
            at, new = draw(_field_change(bytes(original), fields))
            notes.append(f"{next(f.group for f in fields if f.offset <= at < f.offset + f.size)} "
                         f"at {at} = {new.hex()}")
            data[at:at + len(new)] = new
    return name, bytes(data), notes


_BYTES: dict[str, bytes] = {}
_FIELDS: dict[str, list[Field]] = {}


def _fixture_bytes(name: str) -> bytes:
    if name not in _BYTES:
        _BYTES[name] = (TINY / name).read_bytes()
    return _BYTES[name]


def _fixture_fields(name: str) -> list[Field]:
    if name not in _FIELDS:
        _FIELDS[name] = gguf_fields(_fixture_bytes(name))
    return _FIELDS[name]


@dataclass
class Outcome:
    kind: str  # "loaded", "refused" or "defect"
    detail: str  # the error's message, or what went wrong
    seconds: float
    peak_bytes: int


def run_case(data: bytes, path: Path, backend: str = "numpy") -> Outcome:
    """Load ``data`` (written to ``path``), then tokenize and evaluate two tokens."""
    path.write_bytes(data)
    limit = ALLOCATION_FACTOR * len(data) + ALLOCATION_MARGIN
    tracemalloc.start()
    start = time.perf_counter()
    try:
        model = Model.load(path, backend=backend, memory_available=MEMORY_AVAILABLE)
        try:
            ids = model.tokenize("Hi there", add_special=True)[:2] or [0]
            model.logits(ids)
            model.detokenize(ids)
        finally:
            model.close()
        kind, detail = "loaded", ""
    except ChordError as err:
        message = str(err)
        kind, detail = ("refused", message) if message and "\n" not in message else ("defect", f"bad message {message!r}")
    except Exception as err:  # what the fuzzer is here to find
        kind, detail = "defect", f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if kind != "defect" and peak > limit:
        kind, detail = "defect", f"allocated {peak:,} bytes for a {len(data):,}-byte file ({detail or 'loaded'})"
    return Outcome(kind, detail, seconds, peak)
