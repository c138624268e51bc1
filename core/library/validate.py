"""Is this file a model chord-chat can run? ``validate_gguf`` answers before
anything enters the library, and its summary is what the library records."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..arch import SUPPORTED_ARCHITECTURES
from ..errors import ModelFormatError, UnsupportedModelError
from ..gguf_file import GGUFFile
from ..model_facts import model_facts
from ..quants import REGISTRY, type_name
from ..gguf_shards import sibling_shards

@dataclass(frozen=True)
class ModelSummary:
    path: Path  # the file given (the first shard for a split model)
    shards: tuple[Path, ...]
    size: int  # bytes over all shards
    architecture: str
    parameter_count: int
    quant_type: str
    context_length: int | None
    chat_template: str | None
    tensor_types: dict[str, int]  # ggml type name -> number of tensors
    n_tensors: int
    metadata: dict[str, Any] = field(default_factory=dict)  # short scalar keys only

    @property
    def chat_template_source(self) -> str:
        return "gguf" if self.chat_template else "fallback"


def _short_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    # vocabularies and templates would swamp a summary; keep what fits a line
    out = {}
    for key, value in metadata.items():
        if isinstance(value, (np.ndarray, list)) or key == "tokenizer.chat_template":
            continue
        if isinstance(value, str) and len(value) > 200:
            continue
        out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def validate_gguf(path: str | os.PathLike) -> ModelSummary:
    """Check a GGUF (or every shard of a split one) and summarise it.

    Raises ModelFormatError (not GGUF, truncated) or UnsupportedModelError
    (architecture or tensor type chord-chat does not run) with a one-line
    message that names the file.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFormatError(f"{path}: is a directory, not a GGUF file")
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such file")
    shards = sibling_shards(path)
    metadata: dict[str, Any] = {}
    type_counts: dict[str, int] = {}
    tensors = []
    size = 0
    for index, shard in enumerate(shards):
        with GGUFFile(shard) as gguf:
            if index == 0:
                metadata = dict(gguf.metadata)
            _check_split_keys(gguf, index, len(shards))
            size += gguf.size
            for info in gguf.tensors.values():
                if info.ggml_type not in REGISTRY:
                    supported = ", ".join(sorted(q.name for q in REGISTRY.values()))
                    raise UnsupportedModelError(
                        f"{shard}: tensor {info.name!r} has type {type_name(info.ggml_type)}, "
                        f"which chord-chat cannot run (supported: {supported})")
                name = type_name(info.ggml_type)
                type_counts[name] = type_counts.get(name, 0) + 1
                tensors.append(info)
    arch = str(metadata.get("general.architecture", ""))
    if not arch:
        raise UnsupportedModelError(f"{path}: no general.architecture key, so the model type is unknown")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedModelError(
            f"{path}: architecture {arch!r} is not supported (supported: {', '.join(SUPPORTED_ARCHITECTURES)})")
    if not tensors:
        raise ModelFormatError(f"{path}: the GGUF holds no tensors, so it is not a model")
    facts = model_facts(metadata, tensors, size)
    template = metadata.get("tokenizer.chat_template")
    return ModelSummary(
        path=path,
        shards=tuple(shards),
        size=size,
        architecture=arch,
        parameter_count=facts.n_params,
        quant_type=facts.quant,
        context_length=facts.context_length,
        chat_template=str(template) if facts.has_chat_template else None,
        tensor_types=dict(sorted(type_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        n_tensors=len(tensors),
        metadata=_short_metadata(metadata),
    )


def _check_split_keys(gguf: GGUFFile, index: int, count: int) -> None:
    split_count = gguf.metadata.get("split.count")
    if split_count is None:
        if count > 1:
            raise ModelFormatError(f"{gguf.path}: named as a shard but has no split.count key")
        return
    if int(split_count) != count:
        raise ModelFormatError(
            f"{gguf.path}: split.count is {int(split_count)} but the file name says {count} shards")
    split_no = gguf.metadata.get("split.no")
    if split_no is not None and int(split_no) != index:
        raise ModelFormatError(f"{gguf.path}: split.no is {int(split_no)}, expected {index}")
