"""chord-chat as a published package: ``python -m build`` makes an sdist and,
from it, a wheel with the compiled kernels; the wheel, installed with its
dependencies into a fresh virtual environment (none of this checkout's
packages visible), streams a chat through the documented names alone.

Slow (a C build and a venv, about a minute) but run: it is the only check
that what users install works.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
# what a release is built from; everything else in the checkout (tests, docs) stays out
RELEASE_PATHS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "core", "chord_tui", "templates")
EXTENSIONS = ("_kernels", "_attention", "_gguf_strings", "_sampling")

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A clean copy of the release's files: no build outputs, no in-place compiled kernels."""
    src = tmp_path_factory.mktemp("release") / "chord-chat"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd", "*.egg-info")
    for name in RELEASE_PATHS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    return src


@pytest.fixture(scope="module")
def dist(source, tmp_path_factory) -> Path:
    """``python -m build``: the sdist, then the wheel built from the unpacked sdist."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], cwd=source.parent)
    return out


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_the_sdist_carries_every_c_source_and_header(source, dist):
    wanted = sorted(p.relative_to(source).as_posix() for p in (source / "core").rglob("*") if p.suffix in (".c", ".h"))
    assert len(wanted) > 30
    with tarfile.open(only(dist, "*.tar.gz")) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert [w for w in wanted if w not in names] == []


def test_the_wheel_carries_the_compiled_kernels_every_package_and_the_data_files(source, dist):
    with zipfile.ZipFile(only(dist, "*.whl")) as whl:
        names = set(whl.namelist())
    for ext in EXTENSIONS:
        assert any(n.startswith(f"chord_core/{ext}.") and n.endswith((".so", ".pyd")) for n in names), ext
    init_files = {"chord_core/" + p.relative_to(source / "core").as_posix() for p in (source / "core").rglob("__init__.py")}
    init_files |= {p.relative_to(source).as_posix() for p in (source / "chord_tui").rglob("__init__.py")}
    missing = sorted(init_files - names)
    assert missing == [], "packages on disk but not in the wheel (pyproject's packages list)"
    cuda_sources = {"chord_core/" + p.relative_to(source / "core").as_posix()
                    for p in (source / "core").rglob("*") if p.suffix in (".cu", ".cuh")}
    assert sorted(cuda_sources - names) == [], "sources read at run time, missing from the wheel (package-data)"
    assert any(n.startswith("chord_core/templates/") and n.endswith(".jinja") for n in names)
    assert any(n.startswith("chord_tui/") and n.endswith(".tcss") for n in names)


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its dependencies, as pip installs them."""
    where = tmp_path_factory.mktemp("venv") / "env"
    run([sys.executable, "-m", "venv", str(where)], cwd=where.parent)
    bindir = where / ("Scripts" if os.name == "nt" else "bin")
    run([str(bindir / "python"), "-m", "pip", "install", "-q", str(only(dist, "*.whl"))], cwd=where.parent)
    return bindir


STREAMED_CHAT = """
import sys
from chord_core import ChatSession, Model, SamplerSettings

model = Model.load(sys.argv[1])
reply = ChatSession(model).chat([{"role": "user", "content": "Hi"}], SamplerSettings(seed=1, max_tokens=5))
for piece in reply:
    print(piece, end="", flush=True)
print()
import chord_core
print(chord_core.__file__)
print(model.backend_name, len(reply.result.token_ids), "textual" in sys.modules)
"""


def test_the_installed_wheel_streams_a_chat_with_the_documented_names(venv, smollm_path, tmp_path):
    out = run([str(venv / "python"), "-c", STREAMED_CHAT, str(smollm_path)], cwd=tmp_path).stdout.splitlines()
    text, module_file, facts = out[0], out[1], out[2]
    assert text.strip()
    assert Path(module_file).is_relative_to(venv.parent)  # the installed copy, not this checkout
    assert facts == "cpu 5 False"  # the wheel's compiled kernels ran; the TUI was never imported


def test_the_installed_command_runs_a_chat_turn(venv, smollm_path, tmp_path):
    chord_chat = venv / ("chord-chat.exe" if os.name == "nt" else "chord-chat")
    r = run([str(chord_chat), "run", str(smollm_path), "-n", "4", "--seed", "1", "Hi"], cwd=tmp_path)
    assert r.stdout.strip()
    assert "compiled kernels" not in r.stderr  # no fallback notice: the wheel's kernels import
