"""The CUDA C sources of the cuda backend and the kernels instantiated from
them. Plain text, no CuPy: the sources compile with NVRTC at first use on
the device (device.py) and can be checked by any NVRTC, GPU or not."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent

# ggml type id -> the decoder struct in quant_blocks.cuh. Every other type a
# model may hold (F32, BF16, Q2_K, Q3_K) is converted to F16 at upload.
DECODERS = {2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 1: "F16"}
# GEMV shapes (R, U, KS) compiled: R rows a warp takes (each x unit read
# once for them), U units a lane loads at once, KS warps sharing a row's
# units; matrices.GEMV_SHAPE picks one per type and row count, measured by
# benchmarks/cuda_check.py
GEMV_SHAPES = ((1, 1, 1), (2, 1, 1), (4, 1, 1), (2, 2, 1), (1, 1, 2), (2, 1, 2), (1, 1, 4), (2, 1, 4))
# ggml type id -> the integer decoder struct in matmul_q8.cu: these types'
# decode GEMV takes activations in two 8-bit levels (act_q8.py) and dp4a
Q8_DECODERS = {12: "Q4_K", 13: "Q5_K", 14: "Q6_K"}
# their GEMV shapes (R, U, KS) compiled, as GEMV_SHAPES; a unit is 64 weights
GEMV_Q8_SHAPES = ((1, 2, 1), (2, 1, 1), (2, 2, 1), (4, 1, 1), (4, 2, 1), (2, 4, 1), (1, 4, 1), (2, 2, 2))
# head dims (k = v) the attention kernel is built for: 32 * N
HEAD_DIMS = (32, 64, 96, 128, 256)

NVRTC_OPTIONS = ("-std=c++17",)


def _read(name: str) -> str:
    return (HERE / name).read_text()


def matmul_source() -> str:
    """matmul.cu with its header inlined (NVRTC gets one text, no include path)."""
    return _read("matmul.cu").replace('#include "quant_blocks.cuh"', _read("quant_blocks.cuh"))


def gemv_name(type_id: int, shape: tuple[int, int, int]) -> str:
    return f"gemv<{DECODERS[type_id]}, {shape[0]}, {shape[1]}, {shape[2]}>"


def gemv_q8_name(type_id: int, shape: tuple[int, int, int]) -> str:
    return f"gemv_q8<{Q8_DECODERS[type_id]}, {shape[0]}, {shape[1]}, {shape[2]}>"


def dequant_name(type_id: int) -> str:
    return f"dequant_f16<{DECODERS[type_id]}>"


def attend_name(head_dim: int) -> str:
    return f"attend_part<{head_dim // 32}, {head_dim // 32}>"


# extern "C" kernels of each module (found by name, no instantiation)
PLAIN_KERNELS = {"matmul": ("to_f16_rows", "scale_rows"), "matmul_q8": ("quantize_x",),
                 "layer_ops": ("residual_norm", "qkv_post", "act_mul", "attend_combine")}


def modules() -> dict[str, tuple[str, list[str]]]:
    """module name -> (source, template instantiations to compile)."""
    matmul = [gemv_name(t, rs) for t in DECODERS for rs in GEMV_SHAPES] + [dequant_name(t) for t in DECODERS]
    q8 = [gemv_q8_name(t, rs) for t in Q8_DECODERS for rs in GEMV_Q8_SHAPES]
    ops = [attend_name(d) for d in HEAD_DIMS]
    return {"matmul": (matmul_source(), matmul), "matmul_q8": (_read("matmul_q8.cu"), q8),
            "layer_ops": (_read("layer_ops.cu"), ops)}
