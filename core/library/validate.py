"""Is this file a model chord-chat can run? ``validate_gguf`` answers before
anything enters the library, and its summary is what the library records."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..arch import SUPPORTED_ARCHITECTURES
from ..errors import ModelFormatError, UnsupportedModelError
from ..gguf_file import GGUFFile
from ..quants import REGISTRY, type_name
from .shards import sibling_shards

# llama.cpp's llama_ftype values (general.file_type): the quantization
# recipe, which names a mix such as Q4_K_M that no single tensor type shows.
FILE_TYPE_NAMES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
    16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
    22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
    28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4",
}


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


def _quant_type(metadata: dict[str, Any], weight_elems: Counter) -> str:
    file_type = metadata.get("general.file_type")
    if file_type is not None and int(file_type) in FILE_TYPE_NAMES:
        return FILE_TYPE_NAMES[int(file_type)]
    if not weight_elems:
        return "?"
    return weight_elems.most_common(1)[0][0]


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
    type_counts: Counter = Counter()
    weight_elems: Counter = Counter()
    n_params = n_tensors = size = 0
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
                type_counts[name] += 1
                if len(info.shape) >= 2:
                    weight_elems[name] += info.n_elements
                n_params += info.n_elements
                n_tensors += 1
    arch = str(metadata.get("general.architecture", ""))
    if not arch:
        raise UnsupportedModelError(f"{path}: no general.architecture key, so the model type is unknown")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedModelError(
            f"{path}: architecture {arch!r} is not supported (supported: {', '.join(SUPPORTED_ARCHITECTURES)})")
    if n_tensors == 0:
        raise ModelFormatError(f"{path}: the GGUF holds no tensors, so it is not a model")
    ctx = metadata.get(f"{arch}.context_length")
    template = metadata.get("tokenizer.chat_template")
    return ModelSummary(
        path=path,
        shards=tuple(shards),
        size=size,
        architecture=arch,
        parameter_count=n_params,
        quant_type=_quant_type(metadata, weight_elems),
        context_length=int(ctx) if ctx is not None else None,
        chat_template=str(template) if isinstance(template, str) and template.strip() else None,
        tensor_types=dict(sorted(type_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        n_tensors=n_tensors,
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
