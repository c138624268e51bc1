"""A model whose next token is scripted: the session's logic (stops, UTF-8,
cancellation, context refits) tested with a real tokenizer and no maths."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from chord_core.config import config_from_metadata
from chord_core.gguf_file import GGUFFile
from chord_core.kv_cache import KVCache
from chord_core.model import _model_info
from chord_core.tokenizer import Tokenizer


class ScriptedModel:
    """Duck-types chord_core.Model for ChatSession."""

    def __init__(self, path, script: list[int], n_ctx: int = 256):
        f = GGUFFile(path)
        self.metadata = f.metadata
        self.tokenizer = Tokenizer.from_metadata(f.metadata, str(path))
        self.cfg = config_from_metadata(f.metadata, str(path), n_vocab=self.tokenizer.n_vocab)
        self.info = _model_info(str(path), f, 0.0)
        self.script = list(script)
        self.n_ctx = n_ctx
        self.k = 0
        self.eval_calls: list[list[int]] = []
        self.step = threading.Event()  # when set_gate() was called, eval waits for it
        self.gated = False

    @property
    def n_vocab(self) -> int:
        return self.tokenizer.n_vocab

    def tokenize(self, text, add_special=True, parse_special=False):
        return self.tokenizer.encode(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, ids):
        return self.tokenizer.decode(list(ids))

    def new_cache(self, n_ctx=None):
        # a real KVCache object, but no tensors: the scripted model only records tokens
        cache = KVCache(replace(self.cfg, n_layer=1, n_head_kv=1, head_dim_k=1, head_dim_v=1), n_ctx or self.n_ctx)
        return cache

    def eval(self, ids, cache, all_logits=False):
        ids = list(ids)
        self.eval_calls.append(ids)
        cache.reserve(cache.n_past + len(ids))
        cache.tokens.extend(ids)
        if self.gated:
            self.step.wait(5)
            self.step.clear()
        if self.k < len(self.script) and ids == [self.script[self.k]]:
            self.k += 1
        elif len(ids) > 1 or ids[0] not in self.script:
            self.k = 0
        nxt = self.script[self.k] if self.k < len(self.script) else self.tokenizer.eos_id
        logits = np.full(self.n_vocab, -10.0, np.float32)
        logits[nxt] = 10.0
        return logits
