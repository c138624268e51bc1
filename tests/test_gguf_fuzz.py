"""GGUF fuzzing, the CI slice: 300 seeded mutations of the tiny fixtures'
headers, metadata and tensor infos (tests/gguf_fuzz.py; the long campaign is
scripts/fuzz_gguf.py). Every case ends in a loaded model or a one-line
ChordError, with no allocation beyond the file's size and a fixed margin;
each defect the campaigns found has a regression test below."""

from __future__ import annotations

from datetime import timedelta

import pytest
from gguf_fuzz import TINY, gguf_mutations, run_case
from hypothesis import HealthCheck, given, settings

from chord_core.errors import ModelFormatError
from chord_core.model import Model


@settings(max_examples=300, derandomize=True, database=None, deadline=timedelta(seconds=10),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(gguf_mutations())
def test_mutated_gguf_loads_or_is_refused_in_one_line(tmp_path_factory, mutation):
    name, data, notes = mutation
    outcome = run_case(data, tmp_path_factory.getbasetemp() / "fuzz-case.gguf")
    assert outcome.kind != "defect", f"{name} {notes}: {outcome.detail}"


def _fixture_with(tmp_path, name: str, offset: int, new: bytes):
    data = bytearray((TINY / name).read_bytes())
    data[offset:offset + len(new)] = new
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def test_huge_block_count_is_refused_before_building_per_layer_tables(tmp_path):
    # found by the campaign: block_count 15,059,226 built a 126 MB per-layer table in 4 s before the
    # missing tensors were noticed; offset 214 is llama.block_count's value in tiny-llama-F32
    path = _fixture_with(tmp_path, "tiny-llama-F32.gguf", 214, (15_059_226).to_bytes(4, "little"))
    with pytest.raises(ModelFormatError, match=r"'llama.block_count' is 15059226, more than any model has"):
        Model.load(path, backend="numpy")


def test_huge_head_size_is_refused_before_building_rope_tables(tmp_path):
    # found by the campaign: gemma3.attention.key_length 2**31 + 32 asked NumPy for an 8 GiB rope
    # permutation before any shape was checked; offset 485 is its value in tiny-gemma3-F32
    path = _fixture_with(tmp_path, "tiny-gemma3-F32.gguf", 485, (2**31 + 32).to_bytes(4, "little"))
    with pytest.raises(ModelFormatError, match=r"'gemma3.attention.key_length' is 2147483680, more than any model"):
        Model.load(path, backend="numpy")
