"""What a model *is*, read from its GGUF metadata and tensor table: quant
name, parameter count, size on disk, training context, and whether it
carries a chat template. Every place that shows a model (CLI, TUI,
exports, the library index) takes these from here, so they never disagree.

Sizes are decimal (1 MB = 1,000,000 bytes), as Ollama and file managers
print them and as model hubs label downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from .quants import type_name

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
FILE_TYPE_GUESSED = 1024  # llama.cpp ORs this in when it inferred the ftype instead of reading it

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
BASE_MODEL_LABEL = "base model: completion only"


class TensorLike(Protocol):
    ggml_type: int
    shape: tuple[int, ...]

    @property
    def n_elements(self) -> int: ...


@dataclass(frozen=True)
class ModelFacts:
    architecture: str
    general_name: str | None  # the file's own name for the model (general.name), if any
    quant: str  # llama.cpp's ftype name, e.g. "Q4_K_M"
    n_params: int
    size_bytes: int  # on disk, over all shards
    context_length: int | None  # the training context ({arch}.context_length)
    has_chat_template: bool  # False: a base model, for completion only

    @property
    def kind_label(self) -> str:
        """"" for a chat model, else the marking lists and the CLI show."""
        return "" if self.has_chat_template else BASE_MODEL_LABEL


def quant_name(metadata: dict[str, Any], tensors: Iterable[TensorLike]) -> str:
    """llama.cpp's name for the file's quantization (general.file_type); for a
    file without that key, the tensor type that holds most weight elements."""
    file_type = metadata.get("general.file_type")
    if file_type is not None and not isinstance(file_type, (str, bytes)):
        name = FILE_TYPE_NAMES.get(int(file_type) & ~FILE_TYPE_GUESSED)
        if name is not None:
            return name
    elements: dict[str, int] = {}
    for t in tensors:
        if len(t.shape) >= 2:
            name = type_name(t.ggml_type)
            elements[name] = elements.get(name, 0) + t.n_elements
    return max(elements, key=elements.__getitem__) if elements else "?"


def has_chat_template(metadata: dict[str, Any]) -> bool:
    text = metadata.get(CHAT_TEMPLATE_KEY)
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return isinstance(text, str) and bool(text.strip())


def model_facts(metadata: dict[str, Any], tensors: Iterable[TensorLike], size_bytes: int) -> ModelFacts:
    tensors = list(tensors)
    arch = str(metadata.get("general.architecture", ""))
    ctx = metadata.get(f"{arch}.context_length")
    name = metadata.get("general.name")
    return ModelFacts(
        architecture=arch,
        general_name=str(name) if isinstance(name, str) and name.strip() else None,
        quant=quant_name(metadata, tensors),
        n_params=sum(t.n_elements for t in tensors),
        size_bytes=int(size_bytes),
        context_length=int(ctx) if ctx is not None and int(ctx) > 0 else None,
        has_chat_template=has_chat_template(metadata),
    )


def format_size(n: float | None) -> str:
    """Bytes as decimal units: 253.1 MB (1 MB = 10^6 bytes)."""
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def format_params(n: int | None) -> str:
    """A parameter count as a model card writes it: 268.1M, 1.2B."""
    if not n:
        return "?"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)
