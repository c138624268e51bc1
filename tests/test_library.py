"""The model library: locations, validation, add/rm/default, shards, the registry file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest

from chord_core import locations
from chord_core.errors import ChordError
from chord_core.library import (
    add_model,
    default_model_name,
    get_entry,
    list_entries,
    mark_used,
    remove_model,
    resolve_model,
    set_default,
    shard_paths,
    validate_gguf,
)
from chord_core.library import discovery
from chord_core.library.registry import Registry
from chord_core.quants import REGISTRY

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny"
TINY_LLAMA = TINY / "tiny-llama-F32.gguf"


@pytest.fixture(autouse=True)
def fresh_home(tmp_path, monkeypatch):
    """A library of its own for every test, and no packaged models in it."""
    home = tmp_path / "home"
    monkeypatch.setenv("CHORD_HOME", str(home))
    monkeypatch.setattr("chord_core.library.discovery.installed_distributions", lambda: [])
    return home


def write_gguf(path: Path, arch: str = "llama", *, chat_template: str | None = None,
               split_max_tensors: int = 0, raw_type: gguf.GGMLQuantizationType | None = None) -> Path:
    """A tiny GGUF: five 4x8 weights plus a norm, written with gguf's own writer."""
    w = gguf.GGUFWriter(str(path), arch, split_max_tensors=split_max_tensors)
    w.add_context_length(64)
    if chat_template:
        w.add_chat_template(chat_template)
    for i in range(5):
        w.add_tensor(f"blk.{i}.attn_q.weight", np.full((4, 8), i, np.float16))
    w.add_tensor("output_norm.weight", np.ones(8, np.float32))
    if raw_type is not None:
        _, block_bytes = gguf.GGML_QUANT_SIZES[raw_type]  # one block, given as bytes
        w.add_tensor("odd.weight", np.zeros((1, block_bytes), np.uint8), raw_dtype=raw_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def library_snapshot() -> tuple[bytes | None, list[str]]:
    index = locations.data_dir() / "library.json"
    files = sorted(str(p.relative_to(locations.models_dir())) for p in locations.models_dir().rglob("*"))
    return (index.read_bytes() if index.exists() else None), files


# --- locations ---------------------------------------------------------------

def test_chord_home_holds_every_directory(fresh_home):
    for path in (locations.data_dir(), locations.config_dir(), locations.models_dir(),
                 locations.conversations_db_path(), locations.config_file_path()):
        assert fresh_home in Path(path).parents
    assert locations.models_dir().is_dir()


# --- validation --------------------------------------------------------------

def test_validate_summarises_the_tiny_llama():
    summary = validate_gguf(TINY_LLAMA)
    reader = gguf.GGUFReader(TINY_LLAMA)  # independent count of the elements
    assert summary.parameter_count == sum(int(t.n_elements) for t in reader.tensors)
    assert summary.architecture == "llama"
    assert summary.context_length == 512
    assert summary.n_tensors == len(reader.tensors)
    assert sum(summary.tensor_types.values()) == len(reader.tensors)
    assert summary.quant_type == "F32"


def test_quant_type_falls_back_to_the_most_common_weight_type(tmp_path):
    # no general.file_type: five F16 matrices beat one F32 norm vector
    summary = validate_gguf(write_gguf(tmp_path / "m.gguf"))
    assert summary.quant_type == "F16"
    assert summary.tensor_types == {"F16": 5, "F32": 1}
    assert summary.parameter_count == 5 * 32 + 8
    assert summary.chat_template_source == "fallback"


@pytest.mark.parametrize("ftype", ["Q4_K_M", "Q5_K_M", "Q3_K_M", "Q4_1"])
def test_the_loaded_model_and_the_library_name_the_same_quant(ftype):
    # a K-quant mix stores most of its weights in one type (Q4_K, even Q5_0 on
    # Gemma) but is called by its recipe, general.file_type
    from chord_core.model import Model

    path = TINY / f"tiny-llama-{ftype}.gguf"
    info, summary = Model.load(path).info, validate_gguf(path)
    assert info.quant == summary.quant_type == ftype
    assert info.n_params == summary.parameter_count and info.file_size == summary.size


def test_sizes_and_parameter_counts_have_one_format():
    from chord_core.model_facts import format_params, format_size

    assert format_size(253_100_000) == "253.1 MB"  # decimal megabytes, labelled as such
    assert format_size(1_070_000_000) == "1.1 GB"
    assert format_params(268_098_176) == "268.1M" and format_params(0) == "?"


def test_chat_template_source_is_gguf_when_the_file_has_one(tmp_path):
    summary = validate_gguf(write_gguf(tmp_path / "m.gguf", chat_template="{{ messages }}"))
    assert summary.chat_template_source == "gguf"
    assert summary.chat_template == "{{ messages }}"


def _assert_refused(path: Path, *needles: str) -> None:
    add_model(TINY_LLAMA, name="keeper", mode="copy")  # a library with something in it
    before = library_snapshot()
    with pytest.raises(ChordError) as info:
        add_model(path, mode="copy")
    message = str(info.value)
    assert "\n" not in message and path.name in message
    for needle in needles:
        assert needle in message
    assert library_snapshot() == before


def test_add_refuses_a_truncated_file(tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(TINY_LLAMA.read_bytes()[: TINY_LLAMA.stat().st_size // 2])
    _assert_refused(cut, "truncated")


@pytest.mark.parametrize("name", ["new\nline", "x" * 500, "tab\there"])
def test_names_that_would_break_a_table_or_an_error_line_are_refused(name):
    with pytest.raises(ChordError, match="not a usable model name"):
        add_model(TINY_LLAMA, name=name)


def test_add_names_a_directory_as_one(tmp_path):
    with pytest.raises(ChordError, match="is a directory, not a GGUF file"):
        add_model(tmp_path)


def test_add_refuses_a_file_that_is_not_gguf(tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("these are not the weights you are looking for\n" * 10)
    _assert_refused(text, "not a GGUF")


def test_add_refuses_an_unsupported_architecture(tmp_path):
    _assert_refused(write_gguf(tmp_path / "snake.gguf", arch="mamba"), "mamba", "not supported")


def test_add_refuses_a_tensor_type_without_a_dequantizer(tmp_path, monkeypatch):
    monkeypatch.delitem(REGISTRY, gguf.GGMLQuantizationType.IQ1_S.value, raising=False)
    odd = write_gguf(tmp_path / "odd.gguf", raw_type=gguf.GGMLQuantizationType.IQ1_S)
    _assert_refused(odd, "odd.weight", "IQ1_S")


# --- add, rm, names ----------------------------------------------------------

def test_add_links_by_default_and_records_the_model():
    entry = add_model(TINY_LLAMA)
    assert entry.name == "tiny-llama-F32"
    assert Path(entry.path) == TINY_LLAMA.absolute()
    assert entry.sha256 == hashlib.sha256(TINY_LLAMA.read_bytes()).hexdigest()
    assert entry.size == TINY_LLAMA.stat().st_size
    assert (entry.architecture, entry.context_length) == ("llama", 512)
    assert entry.source == str(TINY_LLAMA.absolute())
    assert entry.added
    again = get_entry("tiny-llama-F32")  # read back from library.json
    assert again == entry
    raw = json.loads((locations.data_dir() / "library.json").read_text())
    assert raw["models"]["tiny-llama-F32"]["parameter_count"] == entry.parameter_count


def test_copy_puts_the_file_in_the_library_and_rm_deletes_only_that(tmp_path):
    src = tmp_path / "mine.gguf"
    shutil.copy(TINY_LLAMA, src)
    copied = add_model(src, mode="copy")
    other = TINY / "tiny-qwen2-F32.gguf"
    linked = add_model(other, name="linked")
    assert Path(copied.path).parent == locations.models_dir()
    assert src.exists()
    _, deleted, kept = remove_model(copied.name)
    assert deleted == [Path(copied.path)] and not Path(copied.path).exists() and not kept
    _, deleted, kept = remove_model(linked.name)
    assert deleted == [] and kept == [other.absolute()] and other.exists()
    assert list_entries() == []


def test_move_takes_the_file_away_from_where_it_was(tmp_path):
    src = tmp_path / "moving.gguf"
    shutil.copy(TINY_LLAMA, src)
    entry = add_model(src, mode="move")
    assert not src.exists()
    assert Path(entry.path) == locations.models_dir() / "moving.gguf"
    assert entry.sha256 == hashlib.sha256(TINY_LLAMA.read_bytes()).hexdigest()


def test_names_are_unique(tmp_path):
    add_model(TINY_LLAMA, name="same", mode="copy")
    with pytest.raises(ChordError, match="already exists"):
        add_model(TINY / "tiny-qwen2-F32.gguf", name="same", mode="copy")
    for folder, fixture in (("a", "tiny-qwen2-F32.gguf"), ("b", "tiny-qwen3-F32.gguf")):
        (tmp_path / folder).mkdir()
        shutil.copy(TINY / fixture, tmp_path / folder / "m.gguf")
    first = add_model(tmp_path / "a" / "m.gguf", mode="copy")
    second = add_model(tmp_path / "b" / "m.gguf", mode="copy")  # derived name taken: suffixed, not refused
    assert (first.name, second.name) == ("m", "m-2")
    assert first.path != second.path


def test_the_same_file_cannot_be_linked_twice():
    add_model(TINY_LLAMA)
    with pytest.raises(ChordError, match="already in the library as 'tiny-llama-F32'"):
        add_model(TINY_LLAMA, name="other")


# --- resolve_model and the default model ---------------------------------------

def test_resolve_model_takes_a_name_or_a_path(tmp_path):
    entry = add_model(TINY_LLAMA, name="tiny")
    assert resolve_model("tiny") == Path(entry.path)
    assert resolve_model("TINY") == Path(entry.path)  # one case-insensitive match is enough
    assert resolve_model(str(TINY / "tiny-qwen2-F32.gguf")) == TINY / "tiny-qwen2-F32.gguf"
    with pytest.raises(ChordError, match="no library model of that name.*tiny"):
        resolve_model("nope")


def test_resolve_model_without_spec_needs_some_model():
    with pytest.raises(ChordError, match="no models yet"):
        resolve_model()
    entry = add_model(TINY_LLAMA)
    assert resolve_model() == Path(entry.path)


def test_resolve_model_reports_a_vanished_file(tmp_path):
    src = tmp_path / "gone.gguf"
    shutil.copy(TINY_LLAMA, src)
    add_model(src)
    src.unlink()
    with pytest.raises(ChordError, match="missing"):
        resolve_model("gone")


def test_default_is_explicit_then_the_last_chat_model_used_never_a_base_model_tried_once(tmp_path):
    plain = add_model(write_gguf(tmp_path / "plain.gguf"))
    chat = add_model(write_gguf(tmp_path / "chat.gguf", chat_template="{{ x }}"))
    newer_chat = add_model(write_gguf(tmp_path / "newer-chat.gguf", chat_template="{{ y }}"))
    add_model(write_gguf(tmp_path / "zzz-plain.gguf", arch="qwen2"))  # newest, but cannot chat
    assert default_model_name() == newer_chat.name
    mark_used(chat.name)
    assert default_model_name() == chat.name
    mark_used(plain.name)  # a base model chosen once, for a test
    assert default_model_name() == chat.name and get_entry(plain.name).last_used
    with Registry().transaction() as state:  # an index written before base models were passed over
        state.last_used = plain.name
    assert default_model_name() == newer_chat.name
    set_default("zzz-plain")  # chosen explicitly: that one is honoured
    assert default_model_name() == "zzz-plain"
    remove_model("zzz-plain")
    assert default_model_name() == newer_chat.name  # the explicit default went with the model


@pytest.mark.parametrize("mode", ["link", "copy"])
def test_adding_a_file_the_library_has_names_that_entry_and_adds_nothing(tmp_path, mode):
    from chord_core.library import DuplicateModelError

    add_model(TINY_LLAMA)
    same = tmp_path / "renamed.gguf"
    shutil.copy(TINY_LLAMA, same)
    before = library_snapshot()
    with pytest.raises(DuplicateModelError) as info:
        add_model(same, mode=mode)
    assert info.value.existing.name == "tiny-llama-F32" and str(same) in str(info.value)
    assert "already in the library as 'tiny-llama-F32'" in str(info.value)
    index, files = library_snapshot()
    assert index == before[0] and [f for f in files if f != "downloads"] == before[1]


def test_mark_used_records_when():
    add_model(TINY_LLAMA)
    assert get_entry("tiny-llama-F32").last_used is None
    mark_used("tiny-llama-F32")
    assert get_entry("tiny-llama-F32").last_used
    with pytest.raises(ChordError):
        mark_used("unknown")


# --- split models ------------------------------------------------------------------

def test_a_split_model_is_one_entry_with_all_shards(tmp_path):
    write_gguf(tmp_path / "big.gguf", split_max_tensors=2)
    shards = [tmp_path / f"big-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert all(p.exists() for p in shards)
    entry = add_model(shards[1], mode="copy")  # any shard names the whole model
    assert entry.name == "big"
    assert len(entry.shards) == 3 and entry.path == entry.shards[0]
    assert entry.parameter_count == 5 * 32 + 8  # tensors from every shard
    assert len(entry.shard_sha256) == 3
    assert shard_paths(entry) == [Path(p) for p in entry.shards]
    assert shard_paths(shards[2]) == shards
    assert shard_paths(resolve_model("big")) == [Path(p) for p in entry.shards]
    _, deleted, _ = remove_model("big")
    assert len(deleted) == 3 and not any(Path(p).exists() for p in entry.shards)


def test_a_split_model_with_a_missing_shard_is_refused(tmp_path):
    write_gguf(tmp_path / "big.gguf", split_max_tensors=2)
    (tmp_path / "big-00002-of-00003.gguf").unlink()
    with pytest.raises(ChordError, match="big-00002-of-00003.gguf is missing"):
        add_model(tmp_path / "big-00001-of-00003.gguf")
    with pytest.raises(ChordError, match="missing"):
        shard_paths(tmp_path / "big-00003-of-00003.gguf")
    assert list_entries() == []


def test_a_whole_file_is_its_own_only_shard():
    assert shard_paths(TINY_LLAMA) == [TINY_LLAMA]


# --- the registry file ----------------------------------------------------------------

def test_a_failed_write_leaves_the_old_index_and_no_temp_files(monkeypatch):
    add_model(TINY_LLAMA)
    index = locations.data_dir() / "library.json"
    before = index.read_bytes()

    def crash(*args):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ChordError, match="cannot save the model library index"):
        set_default("tiny-llama-F32")
    monkeypatch.undo()
    assert index.read_bytes() == before
    assert [p.name for p in index.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_an_exception_inside_a_transaction_writes_nothing():
    add_model(TINY_LLAMA)
    registry = Registry()
    before = registry.path.read_bytes()
    with pytest.raises(RuntimeError):
        with registry.transaction() as state:
            state.default = "tiny-llama-F32"
            raise RuntimeError("boom")
    assert registry.path.read_bytes() == before


def test_a_damaged_index_is_a_one_line_error():
    index = locations.data_dir() / "library.json"
    index.write_text("{ not json")
    with pytest.raises(ChordError) as info:
        list_entries()
    assert "library.json" in str(info.value) and "\n" not in str(info.value)


def test_discovery_is_not_needed_to_list(monkeypatch):
    # the fixture's empty distribution list really is what discovery sees
    assert discovery.find_packaged_models() == []
