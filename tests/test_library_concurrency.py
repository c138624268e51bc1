"""Two processes adding models at the same moment both end up in the registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

TINY = Path(__file__).parent / "fixtures" / "reference" / "tiny" / "tiny-llama-F32.gguf"
PER_PROCESS = 8

CHILD = """
import os, sys, time
from pathlib import Path
from chord_core.library import add_model

folder, go = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():  # start together, so the read-modify-writes overlap
    time.sleep(0.005)
for path in sorted(folder.glob("*.gguf")):
    add_model(path)
"""


def test_two_processes_adding_at_once_keep_both_sets(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "CHORD_HOME": str(home)}
    folders = []
    for who in ("a", "b"):
        folder = tmp_path / who
        folder.mkdir()
        for i in range(PER_PROCESS):
            shutil.copy(TINY, folder / f"{who}-{i}.gguf")
            with open(folder / f"{who}-{i}.gguf", "ab") as fh:  # contents of its own: no two are one file
                fh.write(bytes(1 + i + PER_PROCESS * (who == "b")))
        folders.append(folder)
    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(f), str(go)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for f in folders]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err

    index = json.loads((home / "data" / "library.json").read_text())
    expected = {f"{who}-{i}" for who in ("a", "b") for i in range(PER_PROCESS)}
    assert set(index["models"]) == expected
    for name, entry in index["models"].items():
        assert Path(entry["path"]).name == f"{name}.gguf"
    leftovers = [p.name for p in (home / "data").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
