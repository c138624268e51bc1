"""Start the chat UI with the real engine (``chord-chat`` / ``chord-chat chat MODEL``)."""

from __future__ import annotations

import sys


def launch(model: str | None = None, engine_options: dict | None = None, speculation=None,
           draft: str | None = None, lookup_given: bool = False) -> int:
    """``engine_options``: Model.load's backend/threads/kv_type keywords (chord_core.cli.common);
    ``speculation``/``draft``: prompt lookup, guesses per check, a draft model (``--lookup``, ``--draft-max``,
    ``--draft``); ``lookup_given``: --lookup or --no-lookup was on the command line. Lookup and the draft
    model not given there are the ones the side panel last chose (config.toml)."""
    # Imported here so the CLI's engine verbs never pay for Textual or the engine.
    from chord_tui.app import ChordApp
    from chord_tui.config import AppConfig
    from chord_tui.core_engine import CoreEngine
    from chord_tui.storage_errors import StorageError, open_store

    try:
        store = open_store()
    except StorageError as err:  # locked by another process: say so, start nothing
        print(f"chord-chat: error: {err}", file=sys.stderr)
        return 1
    try:
        config = AppConfig.load()
        speculation, draft = config.speculation_at_start(speculation, draft, lookup_given)
        app = ChordApp(engine=CoreEngine(load_options=engine_options, speculation=speculation, draft=draft),
                       store=store, config=config, model=model)
        app.run()
    finally:
        store.close()
    return int(app.return_code or 0)
