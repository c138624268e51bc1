"""Random-weight GGUF models at the shapes of real ones, for speed and memory
measurements of models too large to download here.

    python benchmarks/make_random_gguf.py --preset llama-3.2-1b --quant Q4_K_M
    python benchmarks/make_random_gguf.py --preset mistral-7b --out /tmp/models
    python benchmarks/make_random_gguf.py --preset tiny --n-layer 4 --quant Q8_0

Tensor types follow llama.cpp's recipe for the file type (src/llama-quant.cpp):
Q4_K_M keeps most matrices in Q4_K and puts the output (the token embedding
when tied), and attn_v/ffn_down of the layers ``use_more_bits`` picks (about
half), in Q6_K; Q4_0 is Q4_0 with a Q6_K output; Q8_0 is Q8_0 throughout.
Norms are F32. The weights are random blocks with sane scales
(random_blocks.py), so activations stay finite through every layer and the
logits spread like a trained model's; the text they produce is noise.

The vocabulary is a minimal SentencePiece ("llama") tokenizer that both
chord-chat and llama.cpp load: <unk>, <s>, </s>, the 256 byte tokens, then
letter pieces with and without the word-start mark up to the vocabulary size.

Tensors are generated and written one at a time, so a 4.8 GB file needs
a few hundred MB of memory. The file is written beside its final name and
renamed when complete.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import random_blocks  # noqa: E402  (beside this script)

DEFAULT_OUT = Path("/work/models")
ARCHS = ("llama", "qwen2", "qwen3")
# llama_ftype (general.file_type) and the type most matrices get
QUANTS = {"Q4_0": (2, "Q4_0"), "Q8_0": (7, "Q8_0"), "Q4_K_M": (15, "Q4_K")}
SPACE = "\u2581"  # SentencePiece's word-start mark
LOGIT_STD = 3.0  # the spread of the output logits, about a trained model's


@dataclass(frozen=True)
class Shape:
    label: str  # general.name says "random weights, <label> shape"
    arch: str
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_vocab: int
    tied: bool  # the output projection is the token embedding
    rope_base: float
    context_length: int
    rms_eps: float = 1e-5


PRESETS = {
    "llama-3.2-1b": Shape("Llama 3.2 1B", "llama", 2048, 16, 32, 8, 64, 8192, 128256, True, 500000.0, 131072),
    "llama-3.1-8b": Shape("Llama 3.1 8B", "llama", 4096, 32, 32, 8, 128, 14336, 128256, False, 500000.0, 131072),
    "mistral-7b": Shape("Mistral 7B", "llama", 4096, 32, 32, 8, 128, 14336, 32000, False, 1000000.0, 32768),
    "qwen2.5-1.5b": Shape("Qwen 2.5 1.5B", "qwen2", 1536, 28, 12, 2, 128, 8960, 151936, True, 1000000.0, 32768,
                          1e-6),
    # small enough for tests: K-quant rows need multiples of 256 columns
    "tiny": Shape("tiny", "llama", 256, 2, 4, 2, 64, 512, 512, True, 10000.0, 2048),
}


@dataclass(frozen=True)
class TensorPlan:
    name: str
    shape: tuple[int, ...]  # NumPy order: (rows, cols) or (n,)
    type_name: str  # "F32" or a key of random_blocks.GENERATORS
    sigma: float  # standard deviation of the weights; F32 vectors: of their noise around ``mean``
    mean: float = 0.0


def use_more_bits(i_layer: int, n_layer: int) -> bool:
    """llama.cpp's choice of the layers whose attn_v/ffn_down get more bits."""
    return i_layer < n_layer // 8 or i_layer >= 7 * n_layer // 8 or (i_layer - n_layer // 8) % 3 == 2


def tensor_plan(s: Shape, quant: str) -> list[TensorPlan]:
    """Every tensor of the model in file order, with its type and scale."""
    base = QUANTS[quant][1]
    # the output projection (the token embedding when tied): Q6_K, except in Q8_0 files
    out_type = "Q8_0" if base == "Q8_0" else "Q6_K"
    more = "Q6_K" if quant == "Q4_K_M" else base
    E, F, q_rows, kv_rows = s.n_embd, s.n_ff, s.n_head * s.head_dim, s.n_head_kv * s.head_dim
    mat = 1.0 / np.sqrt(E)  # keeps each projection's output at the scale of its input
    plan = [TensorPlan("token_embd.weight", (s.n_vocab, E), out_type if s.tied else base,
                       LOGIT_STD / np.sqrt(E) if s.tied else mat)]
    for i in range(s.n_layer):
        p = f"blk.{i}."
        extra = use_more_bits(i, s.n_layer)
        plan.append(TensorPlan(p + "attn_norm.weight", (E,), "F32", 0.05, 1.0))
        plan.append(TensorPlan(p + "attn_q.weight", (q_rows, E), base, mat))
        plan.append(TensorPlan(p + "attn_k.weight", (kv_rows, E), base, mat))
        plan.append(TensorPlan(p + "attn_v.weight", (kv_rows, E), more if extra else base, mat))
        if s.arch == "qwen2":
            plan += [TensorPlan(p + f"attn_{x}.bias", (n,), "F32", 0.1)
                     for x, n in (("q", q_rows), ("k", kv_rows), ("v", kv_rows))]
        if s.arch == "qwen3":
            plan += [TensorPlan(p + f"attn_{x}_norm.weight", (s.head_dim,), "F32", 0.05, 1.0) for x in "qk"]
        plan.append(TensorPlan(p + "attn_output.weight", (E, q_rows), base, 1.0 / np.sqrt(q_rows)))
        plan.append(TensorPlan(p + "ffn_norm.weight", (E,), "F32", 0.05, 1.0))
        plan.append(TensorPlan(p + "ffn_gate.weight", (F, E), base, mat))
        plan.append(TensorPlan(p + "ffn_up.weight", (F, E), base, mat))
        plan.append(TensorPlan(p + "ffn_down.weight", (E, F), more if extra else base, 1.0 / np.sqrt(F)))
    plan.append(TensorPlan("output_norm.weight", (E,), "F32", 0.05, 1.0))
    if not s.tied:
        plan.append(TensorPlan("output.weight", (s.n_vocab, E), out_type, LOGIT_STD / np.sqrt(E)))
    return plan


def check_shape(s: Shape, quant: str) -> None:
    """One line naming the first size that does not fit the blocks or heads."""
    block = max(random_blocks.GENERATORS[t.type_name][1] for t in tensor_plan(s, quant) if t.type_name != "F32")
    for what, cols in (("n_embd", s.n_embd), ("n_ff", s.n_ff), ("n_head * head_dim", s.n_head * s.head_dim)):
        if cols % block:
            raise SystemExit(f"make_random_gguf: {what} = {cols} is not a multiple of {block}, "
                             f"the block size of {quant}'s types")
    if s.n_head % s.n_head_kv:
        raise SystemExit(f"make_random_gguf: n_head {s.n_head} is not a multiple of n_head_kv {s.n_head_kv}")
    if s.head_dim % 2:
        raise SystemExit(f"make_random_gguf: head_dim {s.head_dim} must be even (RoPE rotates pairs)")


def spm_vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of a minimal SentencePiece vocabulary."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256  # unknown, control, control, byte
    singles = [SPACE] + [c for c in string.printable if c.isprintable() and c != " "]
    if n_vocab < len(tokens) + len(singles):
        raise SystemExit(f"make_random_gguf: n_vocab {n_vocab} is too small for a tokenizer; "
                         f"at least {len(tokens) + len(singles)}")
    pieces = list(singles)
    seen = set(pieces)
    for n in itertools.count(1):
        for body in itertools.product(string.ascii_lowercase, repeat=n):
            for piece in (SPACE + "".join(body), "".join(body)):
                if piece not in seen:
                    seen.add(piece)
                    pieces.append(piece)
            if len(tokens) + len(pieces) >= n_vocab:
                break
        if len(tokens) + len(pieces) >= n_vocab:
            break
    pieces = pieces[:n_vocab - len(tokens)]
    scores = [0.0] * len(tokens) + [-float(i) for i in range(len(pieces))]  # shorter pieces merge first
    return tokens + pieces, scores, types + [1] * len(pieces)


def add_metadata(w, s: Shape, quant: str, name: str) -> None:
    w.add_name(name)
    w.add_file_type(QUANTS[quant][0])
    w.add_quantization_version(2)
    w.add_context_length(s.context_length)
    w.add_embedding_length(s.n_embd)
    w.add_block_count(s.n_layer)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    w.add_head_count_kv(s.n_head_kv)
    w.add_key_length(s.head_dim)
    w.add_value_length(s.head_dim)
    w.add_rope_dimension_count(s.head_dim)
    w.add_rope_freq_base(s.rope_base)
    w.add_layer_norm_rms_eps(s.rms_eps)
    w.add_vocab_size(s.n_vocab)
    tokens, scores, types = spm_vocab(s.n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)


def tensor_bytes(rng: np.random.Generator, t: TensorPlan) -> np.ndarray:
    n = int(np.prod(t.shape))
    if t.type_name == "F32":
        values = t.mean + t.sigma * rng.standard_normal(n, dtype=np.float32)
        return values.astype("<f4").view(np.uint8)
    return random_blocks.random_tensor_bytes(rng, t.type_name, n, t.sigma)


def nbytes(t: TensorPlan) -> int:
    n = int(np.prod(t.shape))
    if t.type_name == "F32":
        return 4 * n
    type_id, block, _ = random_blocks.GENERATORS[t.type_name]
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    return n // block * GGML_QUANT_SIZES[GGMLQuantizationType(type_id)][1]


def write_model(path: Path, s: Shape, quant: str, name: str, seed: int = 0) -> int:
    """Write the model to ``path``; returns its size in bytes."""
    import gguf

    check_shape(s, quant)
    plan = tensor_plan(s, quant)
    rng = np.random.default_rng(seed)
    part = path.with_name(path.name + ".part")
    w = gguf.GGUFWriter(part, s.arch)
    add_metadata(w, s, quant, name)
    for t in plan:
        raw = gguf.GGMLQuantizationType.F32 if t.type_name == "F32" else \
            gguf.GGMLQuantizationType(random_blocks.GENERATORS[t.type_name][0])
        w.add_tensor_info(t.name, t.shape, np.dtype(np.float32), nbytes(t), raw_dtype=raw)
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for t in plan:  # one tensor in memory at a time
            w.write_tensor_data(tensor_bytes(rng, t))
        w.close()
        os.replace(part, path)
    except BaseException:
        w.close()
        part.unlink(missing_ok=True)
        raise
    return path.stat().st_size


OVERRIDES = ("arch", "n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "n_ff", "n_vocab", "rope_base",
             "context_length", "rms_eps")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="llama-3.2-1b")
    ap.add_argument("--quant", choices=sorted(QUANTS), default="Q4_K_M")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"directory for the file (default {DEFAULT_OUT})")
    ap.add_argument("--name", help="file stem (default random-PRESET[-custom]-QUANT)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arch", choices=ARCHS)
    for key in OVERRIDES[1:]:
        kind = float if key in ("rope_base", "rms_eps") else int
        ap.add_argument("--" + key.replace("_", "-"), type=kind, help="override the preset's value")
    tie = ap.add_mutually_exclusive_group()
    tie.add_argument("--tied", dest="tied", action="store_true", default=None, help="output = token embedding")
    tie.add_argument("--untied", dest="tied", action="store_false", help="a separate output.weight")
    return ap.parse_args(argv)


def shape_from_args(args: argparse.Namespace) -> tuple[Shape, bool]:
    """The preset with the overrides given; True when any was."""
    changes = {k: getattr(args, k) for k in OVERRIDES + ("tied",) if getattr(args, k) is not None}
    for k, v in changes.items():
        if k != "arch" and not isinstance(v, bool) and not v > 0:
            raise SystemExit(f"make_random_gguf: --{k.replace('_', '-')} must be positive, got {v}")
    return dataclasses.replace(PRESETS[args.preset], **changes), bool(changes)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    shape, custom = shape_from_args(args)
    stem = args.name or f"random-{args.preset}{'-custom' if custom else ''}-{args.quant}"
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stem}.gguf"
    t0 = time.perf_counter()
    size = write_model(path, shape, args.quant, f"random weights, {shape.label} shape", args.seed)
    print(f"{path}: {size / 1e9:.2f} GB ({size} bytes) in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
