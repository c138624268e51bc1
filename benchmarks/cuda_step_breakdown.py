"""Where a decode step's GPU time goes: each kind of operation, over every
layer, captured in its own CUDA graph and replayed (launch gaps as in the
real step; each layer's own weights, so nothing is served from L2). The
matrix products are timed in every compiled GEMV shape, float activations
and 8-bit ones (quantize_x included), so shapes are chosen under the
conditions the step runs in. Run by cuda_check.py on a GPU.
"""

from __future__ import annotations

import numpy as np
import cupy as cp

from chord_core.backend.cuda import act_q8, matrices, sources
from chord_core.backend.cuda.device import i32, launch, ptr


def graph_ms(stream, fn, reps: int = 20) -> float:
    """Median ms of one replay of fn() captured as a graph on ``stream``."""
    with stream:
        stream.begin_capture()
        try:
            fn()
        finally:
            g = stream.end_capture()
    for _ in range(3):
        g.launch(stream)
    times = []
    for _ in range(reps):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record(stream)
        g.launch(stream)
        b.record(stream)
        b.synchronize()
        times.append(cp.cuda.get_elapsed_time(a, b))
    return float(np.median(times))


def _products(dm, kind: str):
    """(matrix, input, output) per layer for one kind of product."""
    if kind == "output":
        return [(dm.output, dm.h, dm.logits)]
    x = {"qkv": dm.h, "out": dm.att, "gate_up": dm.h, "down": dm.act}[kind]
    y = {"qkv": dm.qkv, "out": dm.proj, "gate_up": dm.gu, "down": dm.proj}[kind]
    return [(getattr(L, kind), x, y) for L in dm.layers]


def _run_products(prods, xq, q8_shape) -> None:
    """Every product once: q8_shape None = float activations for all parts."""
    for w, x, y in prods:
        q8 = q8_shape is not None and any(p.type_id in sources.Q8_DECODERS for p in w.parts)
        if q8:
            matrices.quantize_x(x, 0, x.shape[1], 1, w.cols, xq)
        r = 0
        for p in w.parts:
            if q8 and p.type_id in sources.Q8_DECODERS:
                matrices.gemv_q8(p, xq, 1, y, r, y.shape[1], shape=q8_shape)
            else:
                matrices.gemv(p, x, 0, x.shape[1], 1, y, r, y.shape[1])
            r += p.rows


def breakdown(dm, cache, ceiling: float) -> tuple[list[str], dict[str, dict[tuple[int, int, int], float]]]:
    """Markdown lines, and ms per 8-bit GEMV shape per kind of product."""
    s = dm.stream
    lines = ["| operation (all layers) | ms / token | GB | GB/s | note |", "|---|---|---|---|---|"]
    xq = cp.empty(act_q8.row_bytes(max(dm.cfg.n_ff, dm.cfg.n_embd, dm.qkv_cols)), cp.uint8)
    times: dict[str, dict[tuple[int, int, int], float]] = {}
    total = 0.0
    kinds = ["qkv", "out", "gate_up", "down"] + (["output"] if dm.all_gpu else [])
    for kind in kinds:
        prods = _products(dm, kind)
        gb = sum(w.nbytes for w, _, _ in prods) / 1e9
        fl = graph_ms(s, lambda: _run_products(prods, xq, None))
        q8 = {sh: graph_ms(s, lambda sh=sh: _run_products(prods, xq, sh)) for sh in sources.GEMV_Q8_SHAPES}
        sh, ms = min(q8.items(), key=lambda kv: kv[1])
        times[kind] = q8
        total += ms
        cells = " ".join(f"{k}:{v * 1e3:.0f}" for k, v in q8.items())
        lines.append(f"| {kind} | {ms:.3f} | {gb:.3f} | {gb / ms * 1e3:.0f} ({100 * gb / ms * 1e3 / ceiling:.0f} %) | "
                     f"8-bit x, best {sh}; us per shape {cells}; float x {fl:.3f} ms |")
    others = {
        "residual_norm x2": lambda: [dm._residual_norm(dm.proj, L.post_attn, L.ffn_norm, 1, add=True)
                                     for L in dm.layers for _ in range(2)],
        "qkv_post + attention": lambda: [dm._attention(L, cache, il, 1) for il, L in enumerate(dm.layers)],
        "act_mul": lambda: [launch("layer_ops", "act_mul", ((dm.cfg.n_ff + 255) // 256,), (256,),
                                   [ptr(dm.gu), i32(dm.cfg.n_ff), i32(1), i32(int(dm.cfg.spec.gemma)),
                                    ptr(dm.act)]) for _ in dm.layers],
        "quantize_x x4 (inside the products above)": lambda: [
            matrices.quantize_x(dm.h, 0, dm.h.shape[1], 1, dm.cfg.n_embd, xq) for _ in range(4 * len(dm.layers))],
    }
    for name, fn in others.items():
        ms = graph_ms(s, fn)
        total += 0 if name.startswith("quantize_x") else ms
        lines.append(f"| {name} | {ms:.3f} | | | |")
    lines.append(f"| sum | {total:.3f} | | | the whole step's graph adds the copies in and out |")
    return lines, times


def fastest_shapes(times: dict[str, dict[tuple[int, int, int], float]]) -> dict[bool, tuple[int, int, int]]:
    """many rows? -> the 8-bit shape with the least time summed over the kinds of
    product of that size (matrices.MANY_ROWS: gate_up and output are many)."""
    out = {}
    for many in (False, True):
        kinds = [k for k in times if (k in ("gate_up", "output")) == many]
        if kinds:
            out[many] = min(sources.GEMV_Q8_SHAPES, key=lambda sh: sum(times[k][sh] for k in kinds))
    return out
