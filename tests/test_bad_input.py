"""Bad model files: each gives one line naming the problem, and no huge allocation."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import pytest
from gguf_rewrite import rewrite_f32_gguf

from chord_core import ChordError, Model
from chord_core.errors import ModelFormatError, UnsupportedModelError

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"


def _load_error(path) -> str:
    with pytest.raises(ChordError) as exc:
        Model.load(path)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def _patched(tmp_path, data: bytes, name="bad.gguf") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _tensor_info_offset(name: str) -> int:
    """Byte offset of a tensor's info record (its name's length field) in TINY."""
    raw = TINY.read_bytes()
    needle = struct.pack("<Q", len(name)) + name.encode()
    return raw.index(needle)


def test_truncated_file(tmp_path):
    raw = TINY.read_bytes()
    msg = _load_error(_patched(tmp_path, raw[: len(raw) // 2]))
    assert "truncated" in msg and "bad.gguf" in msg


def test_truncated_header(tmp_path):
    raw = TINY.read_bytes()
    msg = _load_error(_patched(tmp_path, raw[:300]))
    assert "truncated" in msg


def test_wrong_magic(tmp_path):
    msg = _load_error(_patched(tmp_path, b"GGML" + TINY.read_bytes()[4:]))
    assert "not a GGUF file" in msg and "magic" in msg


def test_not_a_gguf_at_all(tmp_path):
    msg = _load_error(_patched(tmp_path, b"hello, I am a text file\n" * 10))
    assert "not a GGUF file" in msg


def test_unsupported_version(tmp_path):
    raw = bytearray(TINY.read_bytes())
    raw[4:8] = struct.pack("<I", 7)
    msg = _load_error(_patched(tmp_path, bytes(raw)))
    assert "unsupported GGUF version 7" in msg


@pytest.mark.parametrize("field_offset,what", [(8, "tensor count"), (16, "metadata count")])
def test_absurd_counts(tmp_path, field_offset, what):
    raw = bytearray(TINY.read_bytes())
    raw[field_offset:field_offset + 8] = struct.pack("<Q", 1 << 62)
    msg = _load_error(_patched(tmp_path, bytes(raw)))
    assert f"absurd {what}" in msg


def test_absurd_string_array_length(tmp_path):
    raw = bytearray(TINY.read_bytes())
    key = b"tokenizer.ggml.tokens"
    at = raw.index(key) + len(key) + 4 + 4  # value type, array element type
    raw[at:at + 8] = struct.pack("<Q", 1 << 60)
    msg = _load_error(_patched(tmp_path, bytes(raw)))
    assert "truncated" in msg and "tokenizer.ggml.tokens" in msg


def test_unknown_quant_type_id(tmp_path):
    raw = bytearray(TINY.read_bytes())
    name = "blk.0.attn_q.weight"
    at = _tensor_info_offset(name) + 8 + len(name) + 4 + 2 * 8  # n_dims, ne[2]
    raw[at:at + 4] = struct.pack("<I", 99)
    msg = _load_error(_patched(tmp_path, bytes(raw)))
    assert name in msg and "99" in msg


def test_unsupported_quant_type(tmp_path):
    raw = bytearray(TINY.read_bytes())
    name = "blk.1.ffn_up.weight"  # (256, 128) F32 -> claim IQ4_NL, which has a 32-element block
    at = _tensor_info_offset(name) + 8 + len(name) + 4 + 2 * 8
    raw[at:at + 4] = struct.pack("<I", 20)
    msg = _load_error(_patched(tmp_path, bytes(raw)))
    assert name in msg and "IQ4_NL" in msg
    assert isinstance(_error(tmp_path / "bad.gguf"), UnsupportedModelError)


def _error(path):
    try:
        Model.load(path)
    except ChordError as e:
        return e
    raise AssertionError("no error")


def _write_model(path: Path, arch="llama", drop: str | None = None, reshape: str | None = None,
                 metadata: dict | None = None):
    """TINY rewritten with another architecture, a tensor dropped or reshaped, or metadata changed."""
    rewrite_f32_gguf(TINY, gguf.GGUFWriter(str(path), arch), arch=arch, drop=drop, reshape=reshape,
                     metadata=metadata)
    return path


@pytest.mark.parametrize("key,value,says", [
    ("llama.context_length", "long", "'llama.context_length' is 'long', expected an integer"),
    ("llama.attention.layer_norm_rms_epsilon", "tiny", "expected a number"),
    ("llama.attention.head_count", 0, "'llama.attention.head_count' is 0, expected a positive value"),
    ("llama.attention.key_length", 0, "'llama.attention.key_length' is 0"),
    ("llama.block_count", 0, "'llama.block_count' is 0"),
    ("llama.rope.dimension_count", 4096, "expected an even number up to the head size"),
    ("llama.rope.freq_base", 0.0, "'llama.rope.freq_base' is 0.0"),
    ("tokenizer.ggml.tokens", [1, 2, 3], "'tokenizer.ggml.tokens' is not an array of strings"),
])
def test_bad_metadata_values_name_the_key(tmp_path, key, value, says):
    assert says in _load_error(_write_model(tmp_path / "m.gguf", metadata={key: value}))


def test_an_empty_array_where_a_number_belongs_is_named():
    """gguf's writer will not write an empty array, so the metadata is built here."""
    import numpy as np

    from chord_core.config import config_from_metadata
    from chord_core.gguf_file import GGUFFile

    md = dict(GGUFFile(TINY).metadata)
    md["llama.attention.head_count"] = np.array([], dtype=np.uint32)
    with pytest.raises(ModelFormatError, match="'llama.attention.head_count' is an empty array"):
        config_from_metadata(md, "m.gguf")


def test_a_head_size_that_cannot_be_derived_is_named(tmp_path):
    msg = _load_error(_write_model(tmp_path / "m.gguf", metadata={
        "llama.attention.head_count": 3, "llama.attention.head_count_kv": 3,
        "llama.attention.key_length": None, "llama.attention.value_length": None}))
    assert "embedding_length 128 is not a multiple of head_count 3" in msg


def test_a_huge_size_key_is_an_error_not_an_allocation(tmp_path):
    """A damaged feed_forward_length must fail before the fused gate/up
    matrix is allocated (here it would be ~1 TB), naming the key and value."""
    msg = _load_error(_write_model(tmp_path / "m.gguf", metadata={"llama.feed_forward_length": 2**30}))
    assert "'llama.feed_forward_length' is 1073741824" in msg


def test_a_misaligned_tensor_is_refused(tmp_path):
    raw = bytearray(TINY.read_bytes())
    name = "token_embd.weight"
    at = _tensor_info_offset(name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", raw, at)[0]
    off_at = at + 4 + 8 * n_dims + 4
    struct.pack_into("<Q", raw, off_at, struct.unpack_from("<Q", raw, off_at)[0] + 1)
    msg = _load_error(_patched(tmp_path, bytes(raw)))
    assert "'token_embd.weight'" in msg and "alignment" in msg


def test_an_unreadable_file_is_one_line(tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open

    def deny(path, *args, **kw):
        if str(path).endswith("locked.gguf"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kw)

    path = _patched(tmp_path, TINY.read_bytes(), "locked.gguf")
    monkeypatch.setattr(builtins, "open", deny)
    assert "locked.gguf: cannot be read (Permission denied)" in _load_error(path)


def test_text_that_is_not_utf8_is_one_line():
    model = Model.load(TINY)
    with pytest.raises(ChordError, match=r"not valid UTF-8 \(byte 0xff at character 4\)"):
        model.tokenize("bad \udcff text")


def test_unknown_architecture(tmp_path):
    msg = _load_error(_write_model(tmp_path / "mamba.gguf", arch="mamba"))
    assert "'mamba'" in msg and "supported: llama" in msg and "gemma3" in msg


def test_missing_tensor(tmp_path):
    msg = _load_error(_write_model(tmp_path / "m.gguf", drop="blk.1.ffn_down.weight"))
    assert "missing tensor 'blk.1.ffn_down.weight'" in msg


def test_shape_mismatch(tmp_path):
    msg = _load_error(_write_model(tmp_path / "s.gguf", reshape="blk.0.attn_k.weight"))
    assert "'blk.0.attn_k.weight'" in msg and "expected" in msg


def test_rewritten_copy_still_loads(tmp_path):
    """The writer above is faithful: unchanged, the copy loads and runs."""
    m = Model.load(_write_model(tmp_path / "ok.gguf"))
    assert m.logits([1, 2, 3]).shape == (3, m.n_vocab)


def test_missing_file(tmp_path):
    msg = _load_error(tmp_path / "nope.gguf")
    assert "no such file" in msg


def test_errors_are_format_errors():
    assert issubclass(ModelFormatError, ChordError)
