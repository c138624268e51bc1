"""The key bar at the bottom: compact on narrow terminals, and keys that
still do not fit are left out whole (F1 lists every key) instead of being
cut mid-word at the edge."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # not exported by textual.widgets

COMPACT_BELOW = 100  # columns: below this the keys lose their padding


class FittingFooter(Footer):
    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < COMPACT_BELOW
        for key in self.query(FooterKey):
            key.display = True  # measured again after the next layout
        self.call_after_refresh(self.fit_keys)

    async def recompose(self) -> None:
        await super().recompose()  # the screen's bindings changed
        self.call_after_refresh(self.fit_keys)

    def fit_keys(self, tries: int = 5) -> None:
        """Leave out keys from the right end until the rest fit before the
        command palette key; Help (F1) stays, it lists the others."""
        keys = list(self.query(FooterKey))
        if any(not k.region for k in keys if k.display):  # not laid out yet
            if tries:
                self.call_after_refresh(self.fit_keys, tries - 1)
            return
        palette = [k for k in keys if k.has_class("-command-palette")]
        limit = palette[0].region.x if palette else self.region.right
        shown = [k for k in keys if k not in palette and k.display]
        width = {k: k.region.width + k.styles.margin.left + k.styles.margin.right for k in shown}
        room = limit - self.region.x
        for key in reversed(shown):
            if sum(width[k] for k in shown) <= room:
                break
            if key.action not in ("help", "app.help"):
                key.display = False
                shown.remove(key)
