"""Template bombs: a chat template from a downloaded file is bounded in time,
output and memory inside the render, and over a bound it is a one-line
error naming the template and the limit, in the engine, in ``run`` and in
the TUI (which offers a shipped template instead)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import gguf
import pytest
from fake_engine import make_app, settle
from gguf_rewrite import rewrite_f32_gguf

from chord_core.chat_template import ChatTemplate, ChatTemplateError, TemplateLimitError, TemplateSource
from chord_tui.core_engine import CoreEngine
from chord_tui.screens.dialogs import ConfirmDialog

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"
CONVERSATION = [{"role": "user", "content": "Hi"}]

# the three of issue 13, then ones that go around a naive guard
ISSUE_BOMBS = {
    "nested-ranges": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "string-product": "{{ 'x' * 2000000000 }}",
    "big-string-printed": "{% set s = 'x' * 100000 %}{% for i in range(100000) %}{{ s }}{% endfor %}",
}
MORE_BOMBS = {
    "list-product": "{{ [0] * 10**9 }}",
    "power": "{{ 10 ** (10 ** 9) }}",
    "doubling-join": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                     "{% endfor %}{{ ns.s }}",
    "center": "{{ 'x'.center(2000000000) }}",
    "percent-width": "{{ '%2000000000d' % 1 }}",
    "percent-star": "{{ '%*d' % (2000000000, 1) }}",
    "format-width": "{{ '{:2000000000}'.format(1) }}",
    "join-method": "{% set s = 'x' * 60000 %}{{ s.join([s, s, s]) * 1 }}{{ s.join(s) }}",
    "join-filter": "{% set s = 'x' * 60000 %}{{ (s|list)|join(s) }}",
    "replace": "{% set s = 'x' * 60000 %}{{ s.replace('x', s) }}",
    "indent": "{% set s = '\n' * 60000 %}{{ s|indent(60000) }}",
    "wordwrap": "{% set s = 'x' * 60000 %}{{ s|wordwrap(1, true, s) }}",
    "expandtabs": "{{ ('\t' * 60000).expandtabs(60000) }}",
    "exponential-macro": "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}x{% endmacro %}{{ f(60) }}",
    "accumulated-list": "{% set ns = namespace(l=[]) %}{% set s = 'y' * 60000 %}{% for i in range(100000) %}"
                        "{% set ns.l = ns.l + [s ~ i] %}{% endfor %}{{ ns.l|length }}",
    "silent-nested-loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "dict-chain": "{% set ns = namespace(d={}) %}{% for i in range(100000) %}{% for j in range(100000) %}"
                  "{% set ns.d = {'p': ns.d} %}{% endfor %}{% endfor %}",
    "list-of-references-printed": "{% set s = 'x' * 60000 %}{{ [s, s, s, s, s, s, s, s, s, s, s, s] }}",
    "squared-int": "{% set ns = namespace(x=3) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}{% endfor %}"
                   "{{ ns.x > 0 }}",
    "tojson-indent": "{{ [[[[1]]]]|tojson(indent=100000000) }}",
    "slice-count": "{{ [1]|slice(2000000000)|list }}",
    "batch-fill": "{{ [1]|batch(2000000000, 'x')|list }}",
    "endless-recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "huge-range": "{% for i in range(10**12) %}x{% endfor %}",
}
ALL_BOMBS = {**ISSUE_BOMBS, **MORE_BOMBS}


@pytest.mark.parametrize("name", list(ALL_BOMBS))
def test_bomb_is_refused_with_a_one_line_error_naming_template_and_limit(name):
    template = ChatTemplate(ALL_BOMBS[name], TemplateSource("file", path=f"{name}.jinja"))
    with pytest.raises(TemplateLimitError) as info:
        template.render(CONVERSATION)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"chat template (file: {name}.jinja) ")
    assert any(word in message for word in ("limit", "budget")), message


def test_render_stops_at_its_time_budget():
    template = ChatTemplate("{% for m in messages %}{{ m.content }}{% endfor %}", TemplateSource("file", path="t.jinja"),
                            time_budget_s=0.0)
    with pytest.raises(TemplateLimitError, match=r"^chat template \(file: t.jinja\) ran past its 0 s time budget$"):
        template.render(CONVERSATION)


def test_output_limit_grows_with_the_conversation_and_context():
    """A long conversation is rendered whole (then cut to the context), so it is never a bomb."""
    template = ChatTemplate.fallback("chatml")
    long = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 2000} for i in range(200)]
    assert len(template.render(long, n_ctx=512)) > 2_000_000


def test_template_larger_than_the_limit_is_refused_before_compiling():
    with pytest.raises(TemplateLimitError, match="over the 262,144-character limit for a template"):
        ChatTemplate("x" * 300_000, TemplateSource("gguf"))


def test_deeply_nested_template_is_a_one_line_error():
    with pytest.raises(ChatTemplateError, match=r"cannot be compiled: RecursionError"):
        ChatTemplate("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", TemplateSource("gguf"))


def test_lipsum_is_not_offered_to_templates():
    with pytest.raises(ChatTemplateError, match="'lipsum' is undefined"):
        ChatTemplate("{{ lipsum(1000000) }}", TemplateSource("gguf")).render(CONVERSATION)


def test_probes_do_not_hide_a_bomb():
    template = ChatTemplate(ISSUE_BOMBS["string-product"], TemplateSource("gguf"))
    with pytest.raises(TemplateLimitError):
        template.supports_system
    with pytest.raises(TemplateLimitError):
        template.writes_bos("<s>")


# --- the bombs in a model file, through `run` and the TUI --------------------------------------


def _model_with_template(folder: Path, name: str, template: str) -> Path:
    path = folder / f"{name}.gguf"
    rewrite_f32_gguf(TINY, gguf.GGUFWriter(str(path), "llama"), metadata={"tokenizer.chat_template": template,
                                                                       "general.name": name})
    return path


@pytest.fixture(scope="module")
def bomb_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    models = {name: _model_with_template(folder, name, text) for name, text in ISSUE_BOMBS.items()}
    models["accumulated-list"] = _model_with_template(folder, "accumulated-list", MORE_BOMBS["accumulated-list"])
    models["good"] = _model_with_template(folder, "good", ChatTemplate.fallback("chatml").text)
    return models


_RUN_AND_MEASURE = (
    "import json, resource, sys\n"
    "from chord_tui.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print(json.dumps({'rc': rc, 'peak_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), file=sys.stderr)\n"
)


def _run(model: Path) -> tuple[int, list[str], int]:
    """`chord-chat run MODEL Hi -n 1` in a subprocess: exit code, stderr lines, peak RSS in kB."""
    proc = subprocess.run([sys.executable, "-c", _RUN_AND_MEASURE, "run", str(model), "Hi", "-n", "1",
                           "--backend", "numpy"], capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    measured = json.loads(lines[-1])
    return measured["rc"], lines[:-1], measured["peak_kb"]


@pytest.fixture(scope="module")
def good_run_peak_kb(bomb_models) -> int:
    rc, lines, peak_kb = _run(bomb_models["good"])
    assert rc == 0, lines
    return peak_kb


@pytest.mark.parametrize("name", [*ISSUE_BOMBS, "accumulated-list"])
def test_run_refuses_bomb_model_in_one_line_within_memory(name, bomb_models, good_run_peak_kb):
    rc, lines, peak_kb = _run(bomb_models[name])
    assert rc == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith("chord-chat: error: chat template (GGUF tokenizer.chat_template) ")
    assert lines[0].endswith("; to chat with a shipped template instead: --template chatml")
    assert peak_kb < good_run_peak_kb + 100 * 1024, (peak_kb, good_run_peak_kb)


def test_run_with_the_offered_fallback_template_works(bomb_models):
    proc = subprocess.run([sys.executable, "-m", "chord_tui", "run", str(bomb_models["string-product"]), "Hi",
                           "-n", "1", "--template", "chatml", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["template"] == "fallback: chatml"


async def test_tui_offers_a_fallback_template_for_a_bomb_and_loads_with_it(tmp_path, bomb_models):
    app = make_app(tmp_path, CoreEngine(n_ctx=256, load_options={"backend": "numpy"}),
                   model=str(bomb_models["nested-ranges"]))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot, rounds=400)
        assert app.engine.info is None  # the app is up, with no model
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "GGUF tokenizer.chat_template" in dialog.consequence and "limit" in dialog.consequence
        assert dialog.confirm == "Use chatml"
        await pilot.press("y")
        await settle(app, pilot, rounds=400)
        assert app.engine.info is not None
        assert app.engine.info.template_source == "fallback: chatml"


def test_adding_a_bomb_model_warns_with_the_fallback(bomb_models, capsys):
    from chord_tui.cli import main

    assert main(["models", "add", str(bomb_models["string-product"]), "--name", "bomb-added"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert re.fullmatch(r"chord-chat: warning: chat template \(GGUF tokenizer.chat_template\) would build a value with "
                        r"'\*' of about 2,000,000,000 characters, over its [\d,]+-character limit; chat with a "
                        r"shipped template: --template chatml", err[0]), err[0]
