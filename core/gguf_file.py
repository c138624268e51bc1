"""A fast, memory-mapped GGUF reader.

Why not ``gguf.GGUFReader``: it builds a NumPy view for every array element,
which costs ~10 s on Gemma 3's 262,144-token vocabulary. Here string arrays
are decoded in one pass over the bytes and tensors stay as mmap slices.

GGUF layout (little-endian): magic "GGUF", u32 version (2 or 3), u64 tensor
count, u64 metadata count, the metadata key/values, the tensor infos, then
the tensor data at the next multiple of ``general.alignment`` (default 32).
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ModelFormatError
from .gguf_shards import shard_paths

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
# Limits far above any real model; they stop a corrupt count from
# making us allocate or loop for ever before we notice the file is short.
MAX_TENSORS = 1 << 20
MAX_KV = 1 << 20
MAX_DIMS = 4

# metadata value types (gguf spec)
_T_UINT8, _T_INT8, _T_UINT16, _T_INT16, _T_UINT32, _T_INT32, _T_FLOAT32 = range(7)
_T_BOOL, _T_STRING, _T_ARRAY, _T_UINT64, _T_INT64, _T_FLOAT64 = range(7, 13)
_SCALAR = {
    _T_UINT8: ("<B", 1, np.uint8), _T_INT8: ("<b", 1, np.int8),
    _T_UINT16: ("<H", 2, np.uint16), _T_INT16: ("<h", 2, np.int16),
    _T_UINT32: ("<I", 4, np.uint32), _T_INT32: ("<i", 4, np.int32),
    _T_FLOAT32: ("<f", 4, np.float32), _T_BOOL: ("<?", 1, np.bool_),
    _T_UINT64: ("<Q", 8, np.uint64), _T_INT64: ("<q", 8, np.int64),
    _T_FLOAT64: ("<d", 8, np.float64),
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # NumPy order (rows first): GGUF stores ne[] innermost-first
    ggml_type: int
    offset: int  # absolute byte offset in the file
    n_bytes: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


class _Cursor:
    """Bounds-checked little-endian reads over the mapped file."""

    def __init__(self, mm: mmap.mmap, path: str):
        # slicing the mmap copies just the slice; a memoryview is kept for frombuffer
        self.mm, self.buf, self.pos, self.path = mm, memoryview(mm), 0, path

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise ModelFormatError(
                f"{self.path}: truncated GGUF file (needs {n} bytes for {what} at offset {self.pos}, "
                f"file is {len(self.buf)} bytes)"
            )

    def unpack(self, fmt: str, size: int, what: str):
        self.need(size, what)
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += size
        return v

    def string(self, what: str) -> str:
        n = self.unpack("<Q", 8, what)
        self.need(n, what)
        s = self.mm[self.pos:self.pos + n].decode("utf-8", errors="replace")
        self.pos += n
        return s


def _read_value(cur: _Cursor, vtype: int, key: str) -> Any:
    if vtype in _SCALAR:
        fmt, size, _ = _SCALAR[vtype]
        return cur.unpack(fmt, size, key)
    if vtype == _T_STRING:
        return cur.string(key)
    if vtype == _T_ARRAY:
        etype = cur.unpack("<I", 4, key)
        count = cur.unpack("<Q", 8, key)
        if etype in _SCALAR:
            _, size, dtype = _SCALAR[etype]
            cur.need(count * size, key)
            arr = np.frombuffer(cur.buf, dtype=dtype, count=count, offset=cur.pos).copy()
            cur.pos += count * size
            return arr
        if etype == _T_STRING:
            # every item needs at least its 8-byte length, so a corrupt count
            # fails here instead of looping over garbage
            cur.need(count * 8, key)
            return _read_string_array(cur, count, key)
        if etype == _T_ARRAY:
            return [_read_value(cur, _T_ARRAY, key) for _ in range(count)]
        raise ModelFormatError(f"{cur.path}: metadata key {key!r} has an array of unknown type {etype}")
    raise ModelFormatError(f"{cur.path}: metadata key {key!r} has unknown value type {vtype}")


def read_string_array_py(buf, pos: int, count: int) -> tuple[list[str], int]:
    """``count`` GGUF strings from ``pos``: the reference for the compiled
    reader, which must give the same list (UTF-8 with errors="replace") and
    end; a truncated array raises EOFError in both."""
    unpack = struct.Struct("<Q").unpack_from
    end = len(buf)
    out = [""] * count
    try:
        for i in range(count):
            (n,) = unpack(buf, pos)
            q = pos + 8 + n
            if q > end:
                break
            out[i] = buf[pos + 8:q].decode("utf-8", errors="replace")
            pos = q
        else:
            return out, pos
    except struct.error:
        pass
    raise EOFError("string array runs past the end of the file")


try:  # a vocabulary's ~100k strings are most of a small model's load in Python
    from ._gguf_strings import read_string_array
except ImportError:
    read_string_array = read_string_array_py


def _read_string_array(cur: _Cursor, count: int, key: str) -> list[str]:
    try:
        out, cur.pos = read_string_array(cur.mm, cur.pos, count)
    except EOFError:
        raise ModelFormatError(f"{cur.path}: truncated GGUF file inside the array {key!r}") from None
    return out


class _Metadata:
    metadata: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))


class GGUFFile(_Metadata):
    """Metadata and tensor infos of one GGUF file; tensor bytes stay on disk."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        try:
            self._fh = open(self.path, "rb")
        except FileNotFoundError:
            raise ModelFormatError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise ModelFormatError(f"{self.path}: is a directory, not a GGUF file") from None
        except OSError as err:  # permission denied, a broken mount, …
            raise ModelFormatError(f"{self.path}: cannot be read ({err.strerror or err})") from None
        size = os.fstat(self._fh.fileno()).st_size
        if size < 24:
            self._fh.close()
            raise ModelFormatError(f"{self.path}: not a GGUF file (only {size} bytes)")
        self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        self.size = size
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    def _parse(self) -> None:
        cur = _Cursor(self._mm, self.path)
        magic = self._mm[:4]
        if magic != GGUF_MAGIC:
            raise ModelFormatError(f"{self.path}: not a GGUF file (magic {magic!r}, expected b'GGUF')")
        cur.pos = 4
        self.version = cur.unpack("<I", 4, "version")
        if self.version not in SUPPORTED_VERSIONS:
            raise ModelFormatError(
                f"{self.path}: unsupported GGUF version {self.version} (supported: 2, 3)")
        n_tensors = cur.unpack("<Q", 8, "tensor count")
        n_kv = cur.unpack("<Q", 8, "metadata count")
        if n_tensors > MAX_TENSORS:
            raise ModelFormatError(f"{self.path}: absurd tensor count {n_tensors}")
        if n_kv > MAX_KV:
            raise ModelFormatError(f"{self.path}: absurd metadata count {n_kv}")
        if n_tensors * 24 + n_kv * 12 > self.size:  # too small to hold its own header: cut short
            raise ModelFormatError(f"{self.path}: truncated GGUF file: {n_kv} metadata entries and {n_tensors} "
                                   f"tensors cannot fit in {self.size} bytes")
        self.metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string("metadata key")
            vtype = cur.unpack("<I", 4, key)
            self.metadata[key] = _read_value(cur, vtype, key)
        infos = []
        for _ in range(n_tensors):
            name = cur.string("tensor name")
            n_dims = cur.unpack("<I", 4, name)
            if n_dims == 0 or n_dims > MAX_DIMS:
                raise ModelFormatError(f"{self.path}: tensor {name!r} has {n_dims} dimensions")
            ne = [cur.unpack("<Q", 8, name) for _ in range(n_dims)]
            ggml_type = cur.unpack("<I", 4, name)
            rel = cur.unpack("<Q", 8, name)
            infos.append((name, tuple(reversed(ne)), ggml_type, rel))
        align = self.metadata.get("general.alignment", 32)
        if not isinstance(align, (int, np.integer)) or isinstance(align, bool) or align <= 0 or align & (align - 1):
            raise ModelFormatError(f"{self.path}: general.alignment {align} is not a power of two")
        data_start = (cur.pos + align - 1) // align * align
        from .quants import tensor_nbytes  # local: quants imports nothing of ours

        self.tensors: dict[str, TensorInfo] = {}
        for name, shape, ggml_type, rel in infos:
            n_bytes = tensor_nbytes(ggml_type, shape, name=name, path=self.path)
            if rel % align:
                raise ModelFormatError(f"{self.path}: tensor {name!r} starts at offset {rel}, "
                                       f"not a multiple of the alignment {align}")
            off = data_start + rel
            if off + n_bytes > self.size:
                raise ModelFormatError(
                    f"{self.path}: truncated GGUF file: tensor {name!r} ends at byte {off + n_bytes}, "
                    f"file is {self.size} bytes")
            self.tensors[name] = TensorInfo(name, shape, ggml_type, off, n_bytes)
        self.data_start = data_start

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes as a read-only uint8 view of the mapping."""
        t = self.tensors[name]
        return np.frombuffer(self._mm, dtype=np.uint8, count=t.n_bytes, offset=t.offset)

    def release(self, name: str, start: int = 0, stop: int | None = None) -> None:
        """Drops bytes start..stop of the tensor (all of it by default) from
        this process's memory: their pages stay in the page cache and are
        read again if touched. For bytes the backend has copied into a
        layout of its own."""
        t = self.tensors[name]
        start, stop = max(0, start), t.n_bytes if stop is None else min(stop, t.n_bytes)
        page = mmap.PAGESIZE
        lo = -(-(t.offset + start) // page) * page  # whole pages inside the range only: a neighbour may be in use
        hi = (t.offset + stop) // page * page
        if hi > lo and hasattr(self._mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            self._mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def close(self) -> None:
        # mmap.close() fails while NumPy views still point into it; the
        # mapping is then freed with the last view instead.
        try:
            self._mm.close()
        except (BufferError, AttributeError):
            pass
        self._fh.close()

    def __enter__(self) -> "GGUFFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ShardedGGUF(_Metadata):
    """The shards of a gguf-split model as one file: metadata of the first
    shard, tensors of all of them (each read from its own mapping)."""

    def __init__(self, paths: list[str | os.PathLike]):
        self.shards = [GGUFFile(p) for p in paths]
        first = self.shards[0]
        self.path, self.metadata, self.version = first.path, first.metadata, first.version
        self.size = sum(s.size for s in self.shards)
        self.data_start = first.data_start
        self.tensors: dict[str, TensorInfo] = {}
        self._owner: dict[str, GGUFFile] = {}
        for s in self.shards:
            for name, t in s.tensors.items():
                if name in self.tensors:
                    raise ModelFormatError(f"{s.path}: tensor {name!r} is also in another shard")
                self.tensors[name] = t
                self._owner[name] = s

    def raw(self, name: str) -> np.ndarray:
        return self._owner[name].raw(name)

    def release(self, name: str, start: int = 0, stop: int | None = None) -> None:
        self._owner[name].release(name, start, stop)

    def close(self) -> None:
        for s in self.shards:
            s.close()


def open_gguf(path: str | os.PathLike) -> GGUFFile | ShardedGGUF:
    """One GGUF file, or all shards of a split model when ``path`` is one of them."""
    f = GGUFFile(path)
    count = f.metadata.get("split.count", 1)
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool):
        f.close()
        raise ModelFormatError(f"{f.path}: metadata key 'split.count' is {count!r}, expected an integer")
    if (count or 1) <= 1:
        return f
    f.close()

    return ShardedGGUF(shard_paths(path))
