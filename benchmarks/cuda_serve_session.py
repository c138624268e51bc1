"""A short `chord-chat serve --backend cuda` session for cuda_check.py: start
the server on a free loopback port, wait for /health, ask one chat
completion and one streamed one, stop it. Returns a markdown report."""

from __future__ import annotations

import json
import sys
import socket
import subprocess
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict, timeout: float = 120) -> bytes:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def run(model: str) -> str:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "chord_tui", "serve", model, "--backend", "cuda", "--port", str(port), "--host",
                             "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"- serve exited early rc={proc.returncode}:\n```\n{proc.stdout.read()[-1500:]}\n```"
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    out.append(f"- GET /health: {r.status} {r.read().decode()[:200]}")
                    break
            except OSError:
                time.sleep(0.5)
        with urllib.request.urlopen(base + "/v1/models", timeout=10) as r:
            model_id = json.loads(r.read())["data"][0]["id"]
        msg = {"model": model_id, "messages": [{"role": "user", "content": "Say hello in five words."}],
               "max_tokens": 24, "temperature": 0}
        t0 = time.perf_counter()
        r = json.loads(_post(base + "/v1/chat/completions", msg))
        out.append(f"- POST /v1/chat/completions ({time.perf_counter() - t0:.2f} s): "
                   f"{json.dumps(r['choices'][0]['message'])[:300]}; usage {r.get('usage')}")
        s = _post(base + "/v1/chat/completions", dict(msg, stream=True)).decode()
        chunks = [ln for ln in s.splitlines() if ln.startswith("data:")]
        out.append(f"- streamed: {len(chunks)} SSE events, last {chunks[-1][:80] if chunks else None}")
    except Exception as e:  # noqa: BLE001
        out.append(f"- server session failed: {type(e).__name__}: {e}")
    finally:
        proc.terminate()
        try:
            log = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            log = proc.communicate()[0]
        out.append(f"- server log tail:\n```\n{log[-800:]}\n```")
    return "\n".join(out)
