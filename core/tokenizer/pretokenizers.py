"""BPE pre-tokenizer regexes, per ``tokenizer.ggml.pre``, as llama.cpp has them.

llama.cpp splits the text with each regex in turn, keeping both the matches
and the text between them as separate words; ``tokenizers``' ``Split`` with
``behavior="isolated"`` does the same, so the lists here are applied in order.
Several regexes are llama.cpp's adaptations of the originals in the models'
``tokenizer.json`` (case-insensitive groups spelled out, letter-case classes
rewritten as look-aheads); they are kept as llama.cpp has them because
matching llama.cpp's ids is the point.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnsupportedModelError

_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN35 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_CASED_UPPER_LOWER = r"((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+"
_CASED_LOWER_UPPER = r"((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*"
TEKKEN = (r"[^\r\n\p{L}\p{N}]?" + _CASED_UPPER_LOWER + r"|[^\r\n\p{L}\p{N}]?" + _CASED_LOWER_UPPER
          + r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
GPT4O = (r"[^\r\n\p{L}\p{N}]?" + _CASED_UPPER_LOWER + _CONTRACTIONS + r"?"
         + r"|[^\r\n\p{L}\p{N}]?" + _CASED_LOWER_UPPER + _CONTRACTIONS + r"?"
         + r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEEPSEEK3 = (r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"""
             r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
CJK_SPLIT = "[一-龥ࠀ-一가-퟿]+"

_REGEXES: dict[str, tuple[str, ...]] = {
    "default": (r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"),
    "llama3": (LLAMA3,),
    "gpt2": (GPT2,),
    "starcoder": (r"\p{N}", GPT2),
    "qwen2": (QWEN2,),
    "qwen35": (QWEN35,),
    "falcon": (r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"),
    "deepseek-coder": (r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK_SPLIT, r"\p{N}"),
    "deepseek3": (r"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", DEEPSEEK3),
    "poro": (r" ?[^(\s|.,!?…。，、।۔،)]+",),
    "viking": (r" ?[^(\s|.,!?…。，、।۔،)]+", r"\p{N}"),
    "tekken": (TEKKEN,),
    "gpt4o": (GPT4O,),
    "seed-coder": (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+"
                   r"|\s*[\r\n]+|\s+(?!\S)|\s+",),
    "bailingmoe": (r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                   r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+",),
    "minicpm5": (r"\p{N}{1,3}", _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
    "ufakzeka": (r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",),
    "laguna": (r"[^\n]+|[\n]+", QWEN2),
}

# tokenizer.ggml.pre -> (regex family, ignore_merges, add_bos default, no BOS id by default)
_NAMES: dict[str, tuple[str, bool, bool, bool]] = {"default": ("default", False, False, False)}
for _fam, _ign, _bos, _names in (
    ("llama3", True, True, "llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano"),
    ("llama3", False, False, "dbrx smaug-bpe"),
    ("gpt2", False, False, "gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum "
                           "modern-bert exaone4 jina-v1-en jina-v2-code roberta-bpe mpt olmo jais trillion "
                           "granite-docling"),
    ("starcoder", False, False, "starcoder refact command-r smollm codeshell exaone minerva-7b mellum2"),
    ("qwen2", False, False, "qwen2 deepseek-r1-qwen kormo f2llmv2 megrez stablelm2 hunyuan solar-open grok-2"),
    ("qwen35", False, False, "qwen35"),
    ("falcon", False, False, "falcon"),
    ("deepseek-coder", False, False, "deepseek-coder"),
    ("deepseek3", False, False, "deepseek-v3 hunyuan-dense joyai-llm hy_v4"),
    ("poro", False, False, "poro-chat bloom gpt3-finnish"),
    ("viking", False, False, "viking"),
    ("tekken", True, True, "tekken"),
    ("gpt4o", False, False, "gpt-4o llama4 kanana2 talkie minimax-m2"),
    ("seed-coder", False, False, "seed-coder"),
    ("bailingmoe", False, False, "bailingmoe bailingmoe2 llada-moe"),
    ("minicpm5", True, False, "minicpm5"),
    ("ufakzeka", False, False, "ufakzeka"),
    ("laguna", False, False, "laguna"),
):
    for _n in _names.split():
        _NAMES[_n] = (_fam, _ign, _bos, False)
for _n in ("glm4", "chatglm-bpe"):
    _NAMES[_n] = ("llama3", False, False, True)


@dataclass(frozen=True)
class PreTokenizer:
    name: str  # tokenizer.ggml.pre as given ("default" when absent)
    regexes: tuple[str, ...]
    ignore_merges: bool  # a word that is itself a token is kept whole
    add_bos: bool  # llama.cpp's default when tokenizer.ggml.add_bos_token is absent
    no_bos: bool  # the family has no BOS token unless the file names one


def pre_tokenizer_for(name: str | None, path: str = "?") -> PreTokenizer:
    """The pre-tokenizer llama.cpp uses for ``tokenizer.ggml.pre``.

    A missing name means llama.cpp's default regexes; a name llama.cpp does not
    know (or one needing code that regexes cannot express) is refused, as
    llama.cpp refuses to load it.
    """
    key = name or "default"
    entry = _NAMES.get(key)
    if entry is None:
        raise UnsupportedModelError(f"{path}: BPE pre-tokenizer '{key}' (tokenizer.ggml.pre) is not supported")
    fam, ignore_merges, add_bos, no_bos = entry
    return PreTokenizer(key, _REGEXES[fam], ignore_merges, add_bos, no_bos)
