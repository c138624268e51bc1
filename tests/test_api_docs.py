"""docs/api.md is the public API: its table names exactly ``chord_core.__all__``,
and every ```python block in it runs, in order, on SmolLM2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import chord_core

ROOT = Path(__file__).parent.parent
API_DOC = ROOT / "docs" / "api.md"
README = ROOT / "README.md"


def python_blocks(markdown: str) -> list[tuple[int, str]]:
    """(first line number, code) of every ```python fenced block."""
    return [(markdown[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", markdown, re.S | re.M)]


def documented_names(markdown: str) -> list[str]:
    """The first column of the table under "## The names"."""
    section = markdown.split("## The names", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, re.M)


def test_the_documented_names_are_exactly_all():
    names = documented_names(API_DOC.read_text(encoding="utf-8"))
    assert len(names) == len(set(names)), "a name is documented twice"
    assert sorted(names) == sorted(chord_core.__all__)


def test_every_name_in_all_exists():
    missing = [n for n in chord_core.__all__ if not hasattr(chord_core, n)]
    assert not missing


def test_every_python_block_in_the_api_doc_runs(tmp_path, monkeypatch):
    blocks = python_blocks(API_DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 8  # the doc was read: a broken fence pattern would run nothing
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "api_doc"}
    for line, code in blocks:
        exec(compile(code, f"{API_DOC}:{line}", "exec"), namespace)


def test_the_readmes_use_it_from_python_block_runs(tmp_path, monkeypatch):
    section = README.read_text(encoding="utf-8").split("## Use it from Python", 1)[1].split("\n## ", 1)[0]
    blocks = python_blocks(section)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0][1], f"{README} (Use it from Python)", "exec"), {"__name__": "readme"})


def test_documented_names_stream_a_chat_in_a_fresh_interpreter():
    """Only the names of ``__all__``, imported in a process of their own; no Textual."""
    code = (
        "import sys\n"
        "from chord_core import ChatSession, Model, SamplerSettings, resolve_model\n"
        "model = Model.load(resolve_model('SmolLM2-135M-Instruct.Q4_1'))\n"
        "reply = ChatSession(model).chat([{'role': 'user', 'content': 'Hi'}], SamplerSettings(seed=1, max_tokens=5))\n"
        "pieces = list(reply)\n"
        "assert ''.join(pieces) == reply.result.text and len(reply.result.token_ids) == 5, reply.result\n"
        "assert 'textual' not in sys.modules\n"
        "print(len(pieces))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) >= 5
