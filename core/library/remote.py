"""Remote models: library entries that name an OpenAI-compatible server, not a file.

A remote entry keeps where the server is (its API's base URL), which model
id to ask it for, and the *name* of the environment variable that holds
its API key, never the key: ``library.json`` is a plain file that may be
backed up or shared. Remote and local entries share one namespace (a name
means one model), live in the same index and change under the same lock.
Removing a remote entry deletes nothing on disk: there is no file.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ChordError

if TYPE_CHECKING:  # registry.py reads remote entries from the index: it imports this module
    from .registry import LibraryState

ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_MODEL_ID = 200


@dataclass
class RemoteEntry:
    name: str
    url: str  # the API's base, e.g. http://127.0.0.1:8080/v1 (requests go to URL/chat/completions)
    model: str | None  # the id sent as "model"; None: the one the server says it serves
    api_key_env: str | None  # the environment variable holding the API key (never the key)
    added: str
    last_used: str | None = None

    def __post_init__(self) -> None:
        for name in ("name", "url", "added"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"remote model {self.name!r}: field {name!r} is {getattr(self, name)!r}")
        for name in ("model", "api_key_env", "last_used"):
            if not isinstance(getattr(self, name), (str, type(None))):
                raise TypeError(f"remote model {self.name!r}: field {name!r} is {getattr(self, name)!r}")

    def api_key(self) -> str | None:
        """The key from the environment at the moment of use; None when the entry needs none.
        A named variable that is not set is an error, not a silent request without a key."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ChordError(f"remote model {self.name!r} takes its API key from ${self.api_key_env}, "
                             "which is not set in this environment")
        return key

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RemoteEntry":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def normalize_url(url: str) -> str:
    """The API's base URL: http(s), a host, no credentials, query or fragment. A bare
    server address (no path) gets ``/v1``, where OpenAI-compatible servers answer."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as err:
        raise ChordError(f"{url!r} is not a usable server URL ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChordError(f"{url!r} is not a usable server URL: give http(s)://HOST[:PORT][/PATH], "
                         "e.g. http://127.0.0.1:8080/v1")
    if parts.username or parts.password:
        raise ChordError(f"{parts.scheme}://…@{parts.hostname}: a URL with credentials would store them in the "
                         "library; put the key in an environment variable and pass --api-key-env VAR")
    if parts.query or parts.fragment:
        raise ChordError(f"{url!r}: the server URL takes no ?query or #fragment")
    path = parts.path.rstrip("/")
    for endpoint in ("/chat/completions", "/completions"):
        if path.endswith(endpoint):  # the endpoint pasted whole: keep its base
            path = path[: -len(endpoint)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path or "/v1", "", ""))


def check_env_var(name: str) -> str:
    if not ENV_VAR_NAME.match(name):
        # the value may be the key itself, pasted in the wrong place: never echo it
        raise ChordError("--api-key-env takes the NAME of an environment variable that holds the key "
                         "(letters, digits and _, e.g. OPENAI_API_KEY), not the key itself")
    return name


def check_model_id(model: str) -> str:
    model = model.strip()
    if not model or len(model) > MAX_MODEL_ID or any(not ch.isprintable() for ch in model):
        raise ChordError(f"--model {model[:40]!r}: a model id is 1 to {MAX_MODEL_ID} printable characters")
    return model


def find_remote(state: "LibraryState", spec: str) -> RemoteEntry | None:
    """Exact name, else the one name equal ignoring case (as for local models)."""
    if spec in state.remotes:
        return state.remotes[spec]
    folded = [e for n, e in state.remotes.items() if n.lower() == spec.lower()]
    return folded[0] if len(folded) == 1 else None


def describe_remote(entry: RemoteEntry) -> str:
    """One line: where it is and what it asks for."""
    model = entry.model or "the server's model"
    key = f", key from ${entry.api_key_env}" if entry.api_key_env else ""
    return f"{entry.url} ({model}{key})"


def new_remote(name: str, url: str, model: str | None, api_key_env: str | None) -> RemoteEntry:
    """A checked entry, not yet recorded (``manage.add_remote`` records it)."""
    from .registry import now_iso

    return RemoteEntry(name=name, url=normalize_url(url), model=check_model_id(model) if model is not None else None,
                       api_key_env=check_env_var(api_key_env) if api_key_env is not None else None,
                       added=now_iso())
