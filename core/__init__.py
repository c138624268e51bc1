"""chord_core: the inference engine under chord-chat, usable as a library.

The names in ``__all__`` are the public API, documented in docs/api.md
(tests/test_api_docs.py checks the two agree); every other module and name
is internal and may change. The engine never imports the UI
(tests/test_layering.py checks).
"""

from .batch import BatchSummary, batch, batch_file
from .batch_io import BatchRequest, BatchResult
from .drafters import Speculation
from .errors import ChordError, ContextFullError, ModelFormatError, ModelTooLargeError, UnsupportedModelError
from .events import Done, ErrorEvent, Event, Notice, Started, Stats, TokenAlternative, TokenEvent
from .library import resolve_model
from .model import Model, ModelInfo
from .perplexity import PerplexityResult, perplexity
from .reply import Reply
from .sampling import LiveSettings, SamplerSettings
from .session import ChatSession

__all__ = [
    # models and replies
    "Model", "ModelInfo", "resolve_model", "ChatSession", "Reply", "SamplerSettings", "LiveSettings",
    "Speculation",
    # many requests at once
    "batch", "batch_file", "BatchRequest", "BatchResult", "BatchSummary",
    # scoring
    "perplexity", "PerplexityResult",
    # events, for those who want more than the text
    "Event", "Started", "TokenEvent", "TokenAlternative", "Stats", "Notice", "Done", "ErrorEvent",
    # errors
    "ChordError", "ModelFormatError", "UnsupportedModelError", "ContextFullError", "ModelTooLargeError",
]
