"""Chat templates: the GGUF's own, the shipped fallbacks, overrides, and the sandbox.

Expected prompts are written out by hand from each family's documentation
(model cards, HF tokenizer_config, the Mistral cookbook), not produced by
the code under test.
"""

from __future__ import annotations

import jinja2
import pytest

from chord_core.chat_template import (
    ChatTemplate,
    ChatTemplateError,
    TemplateSource,
    available_fallbacks,
    fallback_name_for,
)
from chord_core.errors import ChordError
from chord_core.gguf_file import GGUFFile

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
TURNS = [
    {"role": "user", "content": "Hello, how are you?"},
    {"role": "assistant", "content": "Fine, and you?"},
    {"role": "user", "content": "I'm doing great!"},
]
SMOLLM_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


@pytest.fixture(scope="module")
def smollm_metadata(smollm_path):
    return GGUFFile(smollm_path).metadata


def hf_render(template_text: str, messages: list[dict], **kwargs) -> str:
    """What transformers' apply_chat_template would produce (its Jinja settings, no sandbox needed here)."""
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template_text).render(messages=messages, **kwargs)


# --- SmolLM2's own template ---------------------------------------------------


def test_smollm_gguf_template_is_used_and_named(smollm_metadata):
    template = ChatTemplate.for_model(smollm_metadata)
    assert template.source == TemplateSource("gguf")
    assert str(template.source) == "GGUF tokenizer.chat_template"


def test_smollm_with_system_prompt_matches_hf_and_hand_written(smollm_metadata):
    template = ChatTemplate.for_model(smollm_metadata)
    messages = [SYSTEM, *TURNS]
    expected = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHello, how are you?<|im_end|>\n"
        "<|im_start|>assistant\nFine, and you?<|im_end|>\n"
        "<|im_start|>user\nI'm doing great!<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    rendered = template.render(messages, add_generation_prompt=True)
    assert rendered == expected
    assert rendered == hf_render(smollm_metadata["tokenizer.chat_template"], messages, add_generation_prompt=True)


def test_smollm_without_system_prompt_gets_its_default_one(smollm_metadata):
    template = ChatTemplate.for_model(smollm_metadata)
    expected = (
        f"<|im_start|>system\n{SMOLLM_DEFAULT_SYSTEM}<|im_end|>\n"
        "<|im_start|>user\nHello, how are you?<|im_end|>\n"
        "<|im_start|>assistant\nFine, and you?<|im_end|>\n"
        "<|im_start|>user\nI'm doing great!<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    rendered = template.render(TURNS)
    assert rendered == expected
    assert rendered == hf_render(smollm_metadata["tokenizer.chat_template"], TURNS, add_generation_prompt=True)


def test_smollm_without_generation_prompt_ends_after_last_turn(smollm_metadata):
    template = ChatTemplate.for_model(smollm_metadata)
    rendered = template.render([SYSTEM, TURNS[0]], add_generation_prompt=False)
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHello, how are you?<|im_end|>\n"
    )


def test_smollm_supports_system_so_prepare_leaves_messages_alone(smollm_metadata):
    template = ChatTemplate.for_model(smollm_metadata)
    assert template.supports_system
    assert template.prepare([SYSTEM, *TURNS]) == [SYSTEM, *TURNS]


# --- fallback selection -----------------------------------------------------------


def test_a_gguf_without_template_is_a_base_model_completed_as_plain_text(gemma_path):
    metadata = GGUFFile(gemma_path).metadata
    assert "tokenizer.chat_template" not in metadata
    template = ChatTemplate.for_model(metadata)  # no fallback unless one is chosen
    assert template.source == TemplateSource("none")
    assert str(template.source) == "none (base model: completion only)"
    assert template.render([{"role": "user", "content": "Once upon a time"}]) == "Once upon a time"
    assert template.render(TURNS) == "Hello, how are you?\n\nFine, and you?\n\nI'm doing great!"


def test_a_fallback_is_used_on_a_base_model_when_chosen(gemma_path):
    template = ChatTemplate.for_model(GGUFFile(gemma_path).metadata, override="gemma")
    assert str(template.source) == "fallback: gemma"


@pytest.mark.parametrize(
    ("arch", "name", "expected"),
    [
        ("gemma3", "Gemma 3 270m", "gemma"),
        ("gemma2", "", "gemma"),
        ("llama", "Meta Llama 3 8B Instruct", "llama3"),
        ("llama", "Llama-3.2-1B-Instruct", "llama3"),
        ("llama", "Mistral 7B Instruct v0.2", "mistral"),
        ("llama", "Mixtral 8x7B Instruct", "mistral"),
        ("phi3", "Phi 3 Mini 4k Instruct", "phi3"),
        ("llama", "Phi-3-mini", "phi3"),
        ("llama", "zephyr-7b-beta", "zephyr"),
        ("llama", "Llama 2 7B Chat", "llama2"),
        ("llama", "llama2-13b-chat", "llama2"),
        ("qwen2", "Qwen2.5 0.5B Instruct", "chatml"),
        ("llama", "SmolLM2 360M", "chatml"),
        ("falcon", "something else", "chatml"),
    ],
)
def test_fallback_chosen_by_architecture_and_name(arch, name, expected):
    assert fallback_name_for({"general.architecture": arch, "general.name": name}) == expected


def test_fallback_also_reads_basename():
    metadata = {"general.architecture": "llama", "general.name": "My Finetune", "general.basename": "llama-3"}
    assert fallback_name_for(metadata) == "llama3"


def test_an_empty_gguf_template_is_no_template():
    template = ChatTemplate.for_model({"general.architecture": "qwen2", "tokenizer.chat_template": "  "})
    assert template.source.kind == "none"


@pytest.mark.parametrize(("name", "marker"), [
    ("chatml", "<|im_end|>"), ("gemma", "<end_of_turn>"), ("llama3", "<|eot_id|>"), ("phi3", "<|end|>"),
    ("llama2", ""), ("mistral", ""), ("zephyr", ""),  # these end a turn with EOS, already a stop
])
def test_a_templates_end_of_turn_marker_is_read_from_the_template(name, marker):
    assert ChatTemplate.fallback(name).end_of_turn == marker


def test_available_fallbacks_lists_every_family():
    assert available_fallbacks() == ["chatml", "gemma", "llama2", "llama3", "mistral", "phi3", "zephyr"]


# --- overrides ------------------------------------------------------------------------


def test_override_by_name_beats_the_gguf_template(smollm_metadata):
    template = ChatTemplate.for_model(smollm_metadata, override="zephyr")
    assert str(template.source) == "fallback: zephyr"


def test_override_by_file(tmp_path, smollm_metadata):
    path = tmp_path / "mine.jinja"
    path.write_text("{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}")
    template = ChatTemplate.for_model(smollm_metadata, override=str(path))
    assert template.source == TemplateSource("file", path=str(path))
    assert str(template.source) == f"file: {path}"
    assert template.render(TURNS[:1]) == "[user]Hello, how are you?"


def test_unknown_override_name_lists_the_available_ones(smollm_metadata):
    with pytest.raises(ChordError) as info:
        ChatTemplate.for_model(smollm_metadata, override="vicuna")
    message = str(info.value)
    assert "vicuna" in message
    for name in available_fallbacks():
        assert name in message
    assert "\n" not in message


@pytest.mark.parametrize(("text", "says"), [
    ("{% for m in messages %}{{ m['content'] }", "syntax error at line 1"),
    ("{{ messages[0]['content'] + 1 }}", "failed: TypeError"),
    ("Just a note, not a template.", "is not a chat template"),
    ("{{ messages[0]['content'] }}", "without its message 'chord-test-answer'"),
])
def test_a_template_file_that_does_not_render_a_conversation_is_refused_with_why(tmp_path, text, says):
    path = tmp_path / "mine.jinja"
    path.write_text(text)
    with pytest.raises(ChatTemplateError) as info:
        ChatTemplate.from_file(path)
    message = str(info.value)
    assert says in message and str(path) in message and "\n" not in message


def test_missing_template_file_is_a_one_line_error(tmp_path):
    with pytest.raises(ChordError, match="not found"):
        ChatTemplate.for_model({}, override=str(tmp_path / "nope.jinja"))


# --- each fallback against its family's documented format ------------------------

# (family, messages, expected) with bos "<s>"/eos "</s>" unless the family's own tokens are used.
FALLBACK_CASES = [
    (
        "chatml",
        [SYSTEM, *TURNS],
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHello, how are you?<|im_end|>\n"
        "<|im_start|>assistant\nFine, and you?<|im_end|>\n"
        "<|im_start|>user\nI'm doing great!<|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
    (
        "gemma",
        TURNS,
        "<bos><start_of_turn>user\nHello, how are you?<end_of_turn>\n"
        "<start_of_turn>model\nFine, and you?<end_of_turn>\n"
        "<start_of_turn>user\nI'm doing great!<end_of_turn>\n"
        "<start_of_turn>model\n",
    ),
    (
        "llama2",
        [SYSTEM, *TURNS],
        "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello, how are you? [/INST]"
        " Fine, and you? </s><s>[INST] I'm doing great! [/INST]",
    ),
    (
        "llama3",
        [SYSTEM, *TURNS],
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nFine, and you?<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nI'm doing great!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    (
        "mistral",
        TURNS,
        "<s> [INST] Hello, how are you? [/INST] Fine, and you?</s> [INST] I'm doing great! [/INST]",
    ),
    (
        "phi3",
        [SYSTEM, *TURNS],
        "<|system|>\nYou are a helpful assistant.<|end|>\n"
        "<|user|>\nHello, how are you?<|end|>\n"
        "<|assistant|>\nFine, and you?<|end|>\n"
        "<|user|>\nI'm doing great!<|end|>\n"
        "<|assistant|>\n",
    ),
    (
        "zephyr",
        [SYSTEM, *TURNS],
        "<|system|>\nYou are a helpful assistant.</s>\n"
        "<|user|>\nHello, how are you?</s>\n"
        "<|assistant|>\nFine, and you?</s>\n"
        "<|user|>\nI'm doing great!</s>\n"
        "<|assistant|>\n",
    ),
]
BOS = {"gemma": "<bos>", "llama3": "<|begin_of_text|>"}
EOS = {"gemma": "<eos>", "llama3": "<|eot_id|>"}


@pytest.mark.parametrize(("family", "messages", "expected"), FALLBACK_CASES, ids=[c[0] for c in FALLBACK_CASES])
def test_fallback_renders_family_format(family, messages, expected):
    template = ChatTemplate.fallback(family)
    rendered = template.render(messages, bos_token=BOS.get(family, "<s>"), eos_token=EOS.get(family, "</s>"))
    assert rendered == expected


@pytest.mark.parametrize(
    ("family", "writes"),
    [("chatml", False), ("gemma", True), ("llama2", True), ("llama3", True),
     ("mistral", True), ("phi3", False), ("zephyr", False)],
)
def test_writes_bos_tells_callers_not_to_add_another(family, writes):
    assert ChatTemplate.fallback(family).writes_bos("<s>") is writes
    assert ChatTemplate.fallback(family).writes_bos("") is False


def test_gemma_folds_system_prompt_into_first_user_turn():
    template = ChatTemplate.fallback("gemma")
    rendered = template.render(template.prepare([SYSTEM, *TURNS]), bos_token="<bos>")
    assert rendered == (
        "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello, how are you?<end_of_turn>\n"
        "<start_of_turn>model\nFine, and you?<end_of_turn>\n"
        "<start_of_turn>user\nI'm doing great!<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_mistral_rejects_system_role_and_prepare_folds_it():
    template = ChatTemplate.fallback("mistral")
    assert not template.supports_system
    with pytest.raises(ChordError, match="refused the conversation"):
        template.render([SYSTEM, *TURNS], bos_token="<s>", eos_token="</s>")
    prepared = template.prepare([SYSTEM, *TURNS])
    assert prepared[0] == {"role": "user", "content": "You are a helpful assistant.\n\nHello, how are you?"}
    assert template.render(prepared, bos_token="<s>", eos_token="</s>") == (
        "<s> [INST] You are a helpful assistant.\n\nHello, how are you? [/INST]"
        " Fine, and you?</s> [INST] I'm doing great! [/INST]"
    )


def test_template_that_drops_system_silently_gets_it_folded(tmp_path):
    path = tmp_path / "drops.jinja"
    path.write_text("{% for m in messages %}{% if m['role'] != 'system' %}<{{ m['role'] }}>{{ m['content'] }}{% endif %}{% endfor %}")
    template = ChatTemplate.from_file(path)
    assert not template.supports_system
    assert template.render(template.prepare([SYSTEM, TURNS[0]])) == (
        "<user>You are a helpful assistant.\n\nHello, how are you?"
    )


def test_gemma_rejects_non_alternating_roles():
    with pytest.raises(ChordError, match="alternate"):
        ChatTemplate.fallback("gemma").render([TURNS[0], TURNS[0]])


# --- HF rendering environment and safety -------------------------------------------


def test_raise_exception_becomes_a_chord_error_with_its_message():
    template = ChatTemplate("{{ raise_exception('x') }}", TemplateSource("file", path="t.jinja"))
    with pytest.raises(ChordError) as info:
        template.render(TURNS)
    assert isinstance(info.value, ChatTemplateError)
    assert "x" in str(info.value) and "file: t.jinja" in str(info.value)


def test_sandbox_blocks_dunder_access():
    template = ChatTemplate("{{ ''.__class__.__mro__[1].__subclasses__() }}", TemplateSource("file", path="evil.jinja"))
    with pytest.raises(ChordError, match="unsafe"):
        template.render(TURNS)


def test_sandbox_is_immutable():
    template = ChatTemplate("{% set _ = messages.append({'role': 'user'}) %}{{ messages | length }}", TemplateSource("gguf"))
    with pytest.raises(ChordError):
        template.render(TURNS)


def test_syntax_error_is_a_one_line_chord_error():
    with pytest.raises(ChordError) as info:
        ChatTemplate("{% for m in messages %}\n{{ m }", TemplateSource("gguf"))
    assert "syntax error" in str(info.value) and "\n" not in str(info.value)


def test_runtime_type_error_is_a_chord_error():
    template = ChatTemplate("{{ messages[0]['content'] + 1 }}", TemplateSource("gguf"))
    with pytest.raises(ChordError, match="GGUF tokenizer.chat_template"):
        template.render(TURNS)


def test_tojson_does_not_html_escape_and_takes_hf_options():
    template = ChatTemplate("{{ {'b': '<a&b>', 'a': 1} | tojson(sort_keys=True) }}", TemplateSource("gguf"))
    assert template.render([]) == '{"a": 1, "b": "<a&b>"}'


def test_strftime_now_and_loopcontrols_are_available():
    text = "{{ strftime_now('%Y') | length }}{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m['role'] }}{% endfor %}"
    assert ChatTemplate(text, TemplateSource("gguf")).render(TURNS) == "4user"


def test_trim_blocks_and_lstrip_blocks_apply():
    text = "{% for m in messages %}\n    {% if m['role'] == 'user' %}\n{{ m['content'] }}|{% endif %}\n{% endfor %}"
    assert ChatTemplate(text, TemplateSource("gguf")).render(TURNS) == "Hello, how are you?|I'm doing great!|"


def test_extra_variables_reach_the_template():
    template = ChatTemplate("{{ custom }}{{ tools is none }}", TemplateSource("gguf"))
    assert template.render([], custom="hi") == "hiTrue"
