"""The vocabulary as llama.cpp's ``llama_vocab::load`` sees it.

Token attributes, special ids, which tokens end generation and the
add-BOS/EOS/space-prefix switches are all decided here, from GGUF metadata,
following llama.cpp's rules (``src/llama-vocab.cpp``) so that tokenization
and end-of-turn detection agree with it. The encoders themselves live in
``spm.py`` and ``bpe.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFormatError, UnsupportedModelError
from .pretokenizers import PreTokenizer, pre_tokenizer_for

# llama_token_attr bit flags (llama.h)
ATTR_UNDEFINED = 0
ATTR_UNKNOWN = 1 << 0
ATTR_UNUSED = 1 << 1
ATTR_NORMAL = 1 << 2
ATTR_CONTROL = 1 << 3
ATTR_USER_DEFINED = 1 << 4
ATTR_BYTE = 1 << 5
ATTR_LSTRIP = 1 << 7
ATTR_RSTRIP = 1 << 8

# GGUF token_type (llama_token_type) -> attribute; index = type, anything else undefined
_TYPE_TO_ATTR = np.array(
    [ATTR_UNDEFINED, ATTR_NORMAL, ATTR_UNKNOWN, ATTR_CONTROL, ATTR_USER_DEFINED, ATTR_UNUSED, ATTR_BYTE],
    dtype=np.int32,
)

SPM, BPE = "llama", "gpt2"

# Names llama.cpp recognises by text because converters did not always set the ids.
_EOT_NAMES = (
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
)
_EOM_NAMES = ("<|eom_id|>",)
_FIM_NAMES = {  # metadata key suffix -> names
    "fim_pre": ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                "<|code_prefix|>", "<|prefix|>"),
    "fim_suf": ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                "<|code_suffix|>", "<|suffix|>"),
    "fim_mid": ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                "<|code_middle|>", "<|middle|>"),
    "fim_pad": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"),
    "fim_rep": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "fim_sep": ("<|file_sep|>",),
}
# Deprecated keys that still set the FIM ids.
_FIM_OLD_KEYS = {"fim_pre": "prefix", "fim_suf": "suffix", "fim_mid": "middle"}
_EOG_NAMES = frozenset((
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
))
# gpt-oss: llama.cpp always renders these, whatever the file says.
_FORCE_USER_DEFINED = ("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>")


@dataclass
class Vocab:
    model: str  # tokenizer.ggml.model: SPM or BPE
    tokens: list[str]
    token_to_id: dict[str, int]
    scores: np.ndarray  # float32, one per token
    attrs: np.ndarray  # int32 llama_token_attr flags, one per token
    bos_id: int | None
    eos_id: int | None
    unk_id: int | None
    eog_ids: frozenset[int]
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool
    pre: PreTokenizer | None  # BPE only
    merges: list[str] = field(default_factory=list)  # BPE only
    # control / user-defined / unknown ids, longest text first: the order in which
    # llama.cpp carves them out of the text
    special_ids: list[int] = field(default_factory=list)

    @property
    def n_vocab(self) -> int:
        return len(self.tokens)


def _get_id(md: dict, key: str, n: int, default: int | None) -> int | None:
    """A special-token id as llama.cpp reads it: out-of-range values keep the default."""
    if default is not None and not 0 <= default < n:
        default = None
    v = md.get(f"tokenizer.ggml.{key}_token_id")
    if v is None or isinstance(v, (str, bytes, list, np.ndarray)):  # a damaged key is as good as none
        return default
    v = int(v)
    return v if 0 <= v < n else default


def load_vocab(md: dict, path: str = "?") -> Vocab:
    model = md.get("tokenizer.ggml.model")
    if model is None:
        raise ModelFormatError(f"{path}: no tokenizer.ggml.model in the GGUF metadata")
    if model not in (SPM, BPE):
        raise UnsupportedModelError(
            f"{path}: tokenizer model '{model}' is not supported (only 'llama' SentencePiece and 'gpt2' BPE)"
        )
    tokens = md.get("tokenizer.ggml.tokens")
    if tokens is None or len(tokens) == 0:
        raise ModelFormatError(f"{path}: no tokenizer.ggml.tokens in the GGUF metadata")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ModelFormatError(f"{path}: metadata key 'tokenizer.ggml.tokens' is not an array of strings")
    n = len(tokens)
    # llama.cpp names empty tokens so that every id stays addressable
    if "" in tokens:
        tokens = [t if t else f"[EMPTY_{i}]" for i, t in enumerate(tokens)]
    token_to_id = dict(zip(tokens, range(n)))
    if len(token_to_id) != n:
        seen: set[str] = set()
        dup = next(t for t in tokens if t in seen or seen.add(t))
        raise ModelFormatError(f"{path}: duplicate token {dup!r} in tokenizer.ggml.tokens")

    scores = md.get("tokenizer.ggml.scores")
    scores = np.zeros(n, np.float32) if scores is None else np.asarray(scores, np.float32)[:n]
    if len(scores) < n:
        raise ModelFormatError(f"{path}: tokenizer.ggml.scores is shorter than the token list")
    types = md.get("tokenizer.ggml.token_type")
    if types is None:
        attrs = np.full(n, ATTR_NORMAL, np.int32)
    else:
        types = np.asarray(types, np.int64)[:n]
        if len(types) < n:
            raise ModelFormatError(f"{path}: tokenizer.ggml.token_type is shorter than the token list")
        ok = (types >= 0) & (types < len(_TYPE_TO_ATTR))
        attrs = np.where(ok, _TYPE_TO_ATTR[np.where(ok, types, 0)], ATTR_UNDEFINED).astype(np.int32)

    pre = None
    merges: list[str] = []
    if model == SPM:
        bos, eos, unk = 1, 2, 0
        add_bos, add_eos, add_space_prefix = True, False, True
    else:
        pre = pre_tokenizer_for(md.get("tokenizer.ggml.pre"), path)
        if "tokenizer.ggml.merges" not in md:
            raise ModelFormatError(f"{path}: BPE tokenizer without tokenizer.ggml.merges")
        merges = list(md["tokenizer.ggml.merges"])
        bos, eos, unk = (None if pre.no_bos else 11), 11, None
        add_bos, add_eos, add_space_prefix = pre.add_bos, False, False
    add_space_prefix = bool(md.get("tokenizer.ggml.add_space_prefix", add_space_prefix))

    bos = _get_id(md, "bos", n, bos)
    eos = _get_id(md, "eos", n, eos)
    unk = _get_id(md, "unknown", n, unk)
    eot = _get_id(md, "eot", n, None)
    eom = _get_id(md, "eom", n, None)
    fim = {}
    for k in _FIM_NAMES:
        fim[k] = _get_id(md, k, n, None)
        if fim[k] is None and k in _FIM_OLD_KEYS:
            fim[k] = _get_id(md, _FIM_OLD_KEYS[k], n, None)

    add_bos = bool(md.get("tokenizer.ggml.add_bos_token", add_bos))
    add_eos = bool(md.get("tokenizer.ggml.add_eos_token", add_eos))
    if add_bos and bos is None:
        raise ModelFormatError(f"{path}: tokenizer.ggml.add_bos_token is true, but there is no BOS token id")
    if add_eos and eos is None:
        raise ModelFormatError(f"{path}: tokenizer.ggml.add_eos_token is true, but there is no EOS token id")

    def make_control(i: int) -> None:
        attrs[i] |= ATTR_CONTROL

    # Ids not given by metadata are found by name; the first match wins and is
    # made a control token (llama.cpp warns that the file was probably wrong).
    def find(names) -> int | None:
        for name in names:
            i = token_to_id.get(name)
            if i is not None:
                make_control(i)
                return i
        return None

    if eot is None:
        eot = find(_EOT_NAMES)
    if eom is None:
        eom = find(_EOM_NAMES)
    for k, names in _FIM_NAMES.items():
        if fim[k] is None:
            fim[k] = find(names)

    # control tokens that say "unused" are unused
    for i in np.flatnonzero((attrs & ATTR_CONTROL) != 0).tolist():
        if "unused" in tokens[i]:
            attrs[i] |= ATTR_UNUSED

    eog = {fim[k] for k in ("fim_pad", "fim_rep", "fim_sep") if fim[k] is not None}
    for name in _EOG_NAMES:
        i = token_to_id.get(name)
        if i is not None:
            eog.add(i)
            make_control(i)
    for name in _FORCE_USER_DEFINED:
        i = token_to_id.get(name)
        if i is not None:
            attrs[i] = ATTR_USER_DEFINED
    eog.update(i for i in (eos, eot, eom) if i is not None)

    # o200k_harmony / solar-open: "<|end|>" ends a message, not the generation
    texts = {tokens[i] for i in eog}
    has_call = bool({"<|call|>", "<|calls|>"} & texts)
    if "<|end|>" in texts and has_call and ("<|return|>" in texts or "<|flush|>" in texts):
        end = token_to_id["<|end|>"]
        eog.discard(end)
        attrs[end] = ATTR_USER_DEFINED
    # gemma4 / paddleocr: "</s>" is ordinary text there
    if "<|tool_response>" in texts and "</s>" in texts:
        s = token_to_id["</s>"]
        eog.discard(s)
        attrs[s] = ATTR_NORMAL

    special = np.flatnonzero((attrs & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) != 0).tolist()
    special.sort(key=lambda i: -len(tokens[i].encode("utf-8")))

    return Vocab(
        model=model, tokens=tokens, token_to_id=token_to_id, scores=scores, attrs=attrs,
        bos_id=bos, eos_id=eos, unk_id=unk, eog_ids=frozenset(eog),
        add_bos=add_bos, add_eos=add_eos, add_space_prefix=add_space_prefix,
        pre=pre, merges=merges, special_ids=special,
    )
