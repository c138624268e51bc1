"""The compiled reader of GGUF string arrays gives what the Python loop gives."""

import struct

import pytest

from chord_core import gguf_file
from chord_core.gguf_file import read_string_array_py

compiled = pytest.importorskip("chord_core._gguf_strings")


def _array(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<Q", len(b)) + b for b in items)


ITEMS = [b"", b"hello", "Ġthe".encode(), b"\xff\xfe broken \xc3", "🎵 ♪".encode(), b"a b", b"\x00nul"]


@pytest.mark.parametrize("prefix", [b"", b"12345"])
def test_compiled_reader_matches_python_reader(prefix):
    buf = prefix + _array(ITEMS) + b"tail"
    got = compiled.read_string_array(buf, len(prefix), len(ITEMS))
    want = read_string_array_py(buf, len(prefix), len(ITEMS))
    assert got == want
    assert got[0][3] == "\ufffd\ufffd broken \ufffd"  # invalid UTF-8 replaced, as llama.cpp prints it
    assert got[1] == len(buf) - 4


@pytest.mark.parametrize("reader", [compiled.read_string_array, read_string_array_py], ids=["compiled", "python"])
@pytest.mark.parametrize("cut", [1, 8, 12])
def test_a_truncated_array_raises_eof_in_both_readers(reader, cut):
    buf = _array(ITEMS)[:-cut]
    with pytest.raises(EOFError):
        reader(buf, 0, len(ITEMS))


@pytest.mark.parametrize("reader", [compiled.read_string_array, read_string_array_py], ids=["compiled", "python"])
def test_a_length_past_the_end_raises_eof_in_both_readers(reader):
    buf = struct.pack("<Q", 2**63) + b"abc"
    with pytest.raises(EOFError):
        reader(buf, 0, 1)


def test_the_gguf_reader_uses_the_compiled_reader_when_it_is_built():
    assert gguf_file.read_string_array is compiled.read_string_array
