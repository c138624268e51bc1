"""Layer by layer: chord-chat's residual stream against llama.cpp's own.

    python benchmarks/llama_cpp_trace.py --llama-python /path/to/venv/bin/python MODEL [--text T] [--llama-arithmetic]

llama.cpp runs in a subprocess (llama-cpp-python, a dev tool) with an eval
callback that copies out every named tensor of the graph; chord_core runs
the same tokens with ``forward(trace=...)``. For each layer it prints
max |ours - llama.cpp| / max |llama.cpp| of ``l_out-{il}`` per position,
then the same for the logits and whether the argmax agrees.

``--llama-arithmetic`` first switches chord_core to llama.cpp's rounding
(benchmarks/llama_arithmetic.py): each op then agrees to about an F32 ulp,
and the table shows where a one-ulp difference flips an 8-bit rounding
and the two runs part, which is why two llama.cpp builds disagree too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

LLAMA_SIDE = r'''
import ctypes, json, sys, numpy as np
import llama_cpp
from llama_cpp import llama_cpp as C
import llama_cpp.llama as LL

class Tensor(ctypes.Structure):  # ggml.h struct ggml_tensor (GGML_MAX_DIMS 4, MAX_SRC 10, MAX_NAME 64)
    _fields_ = [("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4),
                ("nb", ctypes.c_size_t * 4), ("op", ctypes.c_int), ("op_params", ctypes.c_int32 * 16),
                ("flags", ctypes.c_int32), ("src", ctypes.c_void_p * 10), ("view_src", ctypes.c_void_p),
                ("view_offs", ctypes.c_size_t), ("data", ctypes.c_void_p), ("name", ctypes.c_char * 64),
                ("extra", ctypes.c_void_p), ("padding", ctypes.c_char * 8)]

got = {}
def callback(t, ask, _):
    t = ctypes.cast(t, ctypes.POINTER(Tensor)).contents
    name = t.name.decode()
    if ask:
        return name.startswith("l_out-") or name == "result_output"
    if t.type == 0 and name not in got:  # F32 only
        ne, nb = list(t.ne), list(t.nb)
        span = sum((n - 1) * s for n, s in zip(ne, nb)) + 4
        raw = np.frombuffer((ctypes.c_char * span).from_address(t.data), dtype=np.uint8).copy()
        got[name] = np.lib.stride_tricks.as_strided(raw.view(np.float32), ne[::-1], nb[::-1]).copy()
    return True

cb = C.ggml_backend_sched_eval_callback(callback)
default = C.llama_context_default_params
def with_callback():
    p = default(); p.cb_eval = cb; p.cb_eval_user_data = None; return p
LL.llama_cpp.llama_context_default_params = with_callback
path, ids, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
llm = llama_cpp.Llama(model_path=path, n_ctx=max(512, len(ids) + 8), n_batch=512, n_threads=2,
                      logits_all=True, verbose=False)
got.clear()
llm.eval(ids)
np.savez(out, **{k: v.reshape(len(ids), -1) for k, v in got.items()})
'''


def rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b).max(-1) / np.abs(b).max()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-python", required=True)
    ap.add_argument("model")
    ap.add_argument("--text", default="The capital of France is Paris, and the capital of Italy is")
    ap.add_argument("--llama-arithmetic", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from chord_core import Model
    from chord_core.forward import forward
    from chord_core.library import resolve_model

    path = str(resolve_model(args.model))
    # llama.cpp's arithmetic emulates products on F32 weights over an F16 cache
    model = Model.load(path, backend="numpy", kv_type="f16") if args.llama_arithmetic else Model.load(path)
    ids = model.tokenize(args.text)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "llama.npz"
        subprocess.run([args.llama_python, "-c", LLAMA_SIDE, path, json.dumps(ids), str(out)],
                       check=True, stderr=subprocess.DEVNULL)
        theirs = dict(np.load(out))

    ours: dict[str, np.ndarray] = {}

    be = model.backend
    if args.llama_arithmetic:
        from llama_arithmetic import LlamaArithmeticBackend
        be = LlamaArithmeticBackend(model)

    def run() -> np.ndarray:
        return forward(be, model.cfg, model.weights, model.new_cache(len(ids)), ids, all_logits=True,
                       trace=lambda il, x: ours.__setitem__(f"l_out-{il}", x.copy()))

    logits = run()
    print(f"{len(ids)} tokens; max |ours - llama.cpp| / max |llama.cpp| per position")
    for il in range(model.cfg.n_layer):
        r = rel(ours[f"l_out-{il}"], theirs[f"l_out-{il}"])
        print(f"l_out-{il:<3d} " + " ".join(f"{v:.0e}" for v in r))
    r = rel(logits, theirs["result_output"])
    print("logits   " + " ".join(f"{v:.0e}" for v in r))
    same = logits.argmax(-1) == theirs["result_output"].argmax(-1)
    print("argmax   " + " ".join("    =" if s else "    x" for s in same))


if __name__ == "__main__":
    main()
