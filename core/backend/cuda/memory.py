"""GPU memory a model takes on the cuda backend, checked before any upload,
and ``--gpu-layers`` resolved against it. No CuPy here: the estimate and
the advice are plain arithmetic over the tensor table (tested on the CPU)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...config import ModelConfig
from ...errors import ChordError, ModelTooLargeError
from ...model_facts import format_size
from ..base import ROW_EXACT_MAX_T
from .act_q8 import row_bytes
from .layouts import device_type

F32 = 4
LOGIT_ROWS = 128  # step.LOGIT_ROWS
# the module code, cuBLAS's workspace and the allocator's rounding
RESERVE_BYTES = 256 << 20
_LAYER = re.compile(r"^blk\.(\d+)\.")


def layer_of(name: str) -> int | None:
    m = _LAYER.match(name)
    return int(m.group(1)) if m else None


def resolve_gpu_layers(asked: int | None, n_layer: int) -> int:
    """--gpu-layers N: None means all; more than the model has means all."""
    if asked is None:
        return n_layer
    if isinstance(asked, bool) or not isinstance(asked, int) or asked < 0:
        raise ChordError(f"--gpu-layers must be a whole number of at least 0, got {asked!r}")
    return min(asked, n_layer)


def tensor_device_bytes(t: Any) -> int:
    """A tensor's bytes on the GPU: as stored, or F16 where it is converted."""
    if len(t.shape) == 1:
        return t.n_elements * F32
    return t.n_bytes if device_type(t.ggml_type) == t.ggml_type else 2 * t.n_elements


@dataclass(frozen=True)
class DeviceEstimate:
    per_layer: list[int]  # weights + KV cache of each layer
    output: int  # the output matrix (the embedding when tied) and norm, when every layer is on the GPU
    scratch: int
    n_gpu: int
    n_ctx: int

    @property
    def total(self) -> int:
        out = self.output if self.n_gpu == len(self.per_layer) else 0
        return sum(self.per_layer[:self.n_gpu]) + out + self.scratch

    def layers_fitting(self, free: int) -> int:
        """The most leading layers that fit in ``free`` bytes (output left on the CPU)."""
        room, n = free - self.scratch, 0
        for b in self.per_layer:
            if room < b:
                break
            room -= b
            n += 1
        return n


def estimate_device(f: Any, cfg: ModelConfig, n_ctx: int, n_gpu: int, t_max: int) -> DeviceEstimate:
    kv_layer = int(n_ctx) * cfg.n_head_kv * (cfg.head_dim_k + cfg.head_dim_v) * 2
    per_layer = [kv_layer] * cfg.n_layer
    output = 0
    tied = "output.weight" not in f.tensors
    biggest, max_cols = 0, 0
    for name, t in f.tensors.items():
        il = layer_of(name)
        if il is not None:
            per_layer[il] += tensor_device_bytes(t)
        elif name == "output.weight" or (tied and name == "token_embd.weight") or name == "output_norm.weight":
            output += tensor_device_bytes(t)
        if len(t.shape) == 2:
            biggest, max_cols = max(biggest, t.n_elements), max(max_cols, t.shape[-1])
    E, F = cfg.n_embd, cfg.n_ff
    qkv = cfg.n_head * cfg.head_dim_k + cfg.n_head_kv * (cfg.head_dim_k + cfg.head_dim_v)
    acts = t_max * (4 * E + qkv + cfg.n_head * (cfg.head_dim_k + 2 * cfg.head_dim_v) + 3 * F) * F32
    # F16 weights and activations of the tensor-core path; 8-bit activations
    # of the GEMV; logits of LOGIT_ROWS rows
    scratch = (acts + 2 * biggest + 2 * t_max * max_cols + min(t_max, ROW_EXACT_MAX_T) * row_bytes(max_cols)
               + LOGIT_ROWS * cfg.n_vocab * F32 + RESERVE_BYTES)
    return DeviceEstimate(per_layer, output, scratch, n_gpu, int(n_ctx))


def check_device_memory(est: DeviceEstimate, path: str, device: str, free: int) -> None:
    """The one-line refusal when the model's share of the GPU is more than it has free."""
    if est.total <= free:
        return
    fit = est.layers_fitting(free)
    tip = (f"--gpu-layers {fit} (of {len(est.per_layer)}) keeps the rest on the CPU" if fit
           else "no layer fits: use --backend cpu")
    raise ModelTooLargeError(
        f"{path}: needs about {format_size(est.total)} of GPU memory with a context of {est.n_ctx} "
        f"({est.n_gpu} layers on the GPU), but {device} has {format_size(free)} free; try {tip}, "
        f"or a smaller --ctx")
