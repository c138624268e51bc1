"""A remote library entry as the UI sees a model: its row and, once loaded, its info.

CoreEngine (core_engine.py) holds either a local model or a ``RemoteChat``;
these two functions describe the remote one in the same ``ModelEntry`` and
``LoadedModelInfo`` the UI shows for a local model, with what a server does
not say (size, parameters, quantisation, KV memory) left empty.
"""

from __future__ import annotations

from chord_core.library import RemoteEntry
from chord_core.remote_chat import RemoteChat

from .engine import LoadedModelInfo, ModelEntry

REMOTE_ARCHITECTURE = "remote"  # what the side panel and models screen show for a server's model
SERVER_TEMPLATE = "the server's (it renders the prompt)"


def remote_model_entry(entry: RemoteEntry) -> ModelEntry:
    return ModelEntry(
        name=entry.name, path=entry.url, size_bytes=0, architecture=REMOTE_ARCHITECTURE, n_params=0, quant="-",
        context_length=0, template_source=SERVER_TEMPLATE, source=entry.url, file_in_library=False, remote=True,
        metadata={"model id": entry.model or "the one the server serves",
                  "api key": f"from ${entry.api_key_env}" if entry.api_key_env else "none sent",
                  "added": entry.added, "last used": entry.last_used or "-"},
    )


def remote_info(chat: RemoteChat) -> LoadedModelInfo:
    entry = chat.entry
    return LoadedModelInfo(
        name=entry.name, path=entry.url, architecture=REMOTE_ARCHITECTURE, n_params=0,
        quant=chat.model_id or "-", n_ctx=chat.n_ctx, template_source=SERVER_TEMPLATE,
        fingerprint=f"{entry.url}#{chat.model_id or ''}", has_chat_template=True, n_ctx_train=chat.n_ctx,
    )
