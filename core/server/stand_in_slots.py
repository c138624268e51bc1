"""Gone: the server's stand-in slot pool, now ``chord_core.slots``.

Kept only as a re-export for ``core/batch.py``, which imported the stand-in
while core/slots.py was being written; delete once it imports
``chord_core.slots`` itself.
"""

from ..slots import SlotPool, SlotsBusyError

__all__ = ["SlotPool", "SlotsBusyError"]
