"""Rewriting a small GGUF with gguf's own writer, for tests that need a
variant of a fixture (another architecture, a tensor dropped or reshaped,
split into shards)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from chord_core.gguf_file import GGUFFile

SKIP_KEYS = ("general.architecture", "GGUF.version", "general.alignment")


def rewrite_f32_gguf(src_path: Path, writer: gguf.GGUFWriter, arch: str = "llama", drop: str | None = None,
                     reshape: str | None = None, metadata: dict | None = None) -> None:
    """Copy an all-F32 GGUF into ``writer``: metadata (``llama.*`` keys renamed
    to ``arch``, ``metadata`` replacing values by key), every tensor but
    ``drop``, ``reshape`` cut to half its rows."""
    src = GGUFFile(src_path)
    values = dict(src.metadata)
    values.update(metadata or {})
    for key, val in values.items():
        if key in SKIP_KEYS or val is None:  # None in ``metadata``: leave the key out
            continue
        if key.startswith("llama."):
            key = arch + key[5:]
        if isinstance(val, str):
            writer.add_string(key, val)
        elif isinstance(val, bool):
            writer.add_bool(key, val)
        elif isinstance(val, int):
            writer.add_uint32(key, val)
        elif isinstance(val, float):
            writer.add_float32(key, val)
        else:
            writer.add_array(key, list(val) if isinstance(val, list) else val.tolist())
    for name, t in src.tensors.items():
        if name == drop:
            continue
        arr = np.frombuffer(src.raw(name), dtype=np.float32).reshape(t.shape)
        if name == reshape:
            arr = arr[: t.shape[0] // 2]
        writer.add_tensor(name, arr.copy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_base_model(src_path: Path, path: Path, name: str = "tiny-base") -> Path:
    """A copy of an all-F32 llama GGUF without a chat template: a base model."""
    rewrite_f32_gguf(src_path, gguf.GGUFWriter(str(path), "llama"),
                     metadata={"tokenizer.chat_template": None, "general.name": name})
    return path
