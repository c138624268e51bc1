"""A labelled slider for one sampler setting, with its value shown.

textual-slider's ``Slider`` works in integers (mouse drag, click, and
Left/Right), so each setting maps its float range onto integer steps:
``value = min + steps * step``. ``none_at`` names a position displayed as a
word (max tokens 0 = "∞", top-k 0 = "off") and reported as ``off_value``,
which is what the engine takes for it (None for no token limit, 0 for no
top-k). Until the slider is moved, it shows the setting's own value even
where no step lands on it (a config file may say top_k = 250).
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label
from textual_slider import Slider

from chord_tui.messages import SettingChanged


class SettingSlider(Vertical):
    DEFAULT_CSS = """
    SettingSlider { height: auto; }
    SettingSlider > Horizontal { height: 1; }
    SettingSlider .setting-name { width: 1fr; }
    SettingSlider .setting-value { width: auto; text-style: bold; }
    SettingSlider Slider { width: 1fr; height: 1; min-height: 1; border: none; padding: 0; }
    /* No border even when focused: a border would shift the track under the mouse. */
    SettingSlider Slider:focus { border: none; background-tint: $foreground 15%; }
    """

    def __init__(
        self,
        key: str,
        label: str,
        low: float,
        high: float,
        step: float,
        value: float | None,
        *,
        none_at: float | None = None,
        none_label: str = "off",
        off_value: float | None = None,
        integer: bool = False,
    ) -> None:
        super().__init__(id=f"setting-{key.replace('_', '-')}", classes="setting")
        self.key = key
        self.label = label
        self.low, self.high, self.step = low, high, step
        self.none_at = none_at
        self.none_label = none_label
        self.off_value = off_value
        self.integer = integer
        self._slider = Slider(0, round((high - low) / step), value=self._to_steps(value), id=f"slider-{key.replace('_', '-')}")
        self._setting = value  # the value in use until the slider is moved
        self._announced_steps = self._slider.value
        self._value_label = Label(self.format(self.value), classes="setting-value")

    # -- mapping ---------------------------------------------------------------
    def _to_steps(self, value: float | None) -> int:
        if value is None or (self.none_at is not None and value == self.off_value):
            value = self.none_at if self.none_at is not None else self.low
        value = min(max(float(value), self.low), self.high)
        return round((value - self.low) / self.step)

    def _from_steps(self, steps: int) -> float | int | None:
        value = self.low + steps * self.step
        if self.none_at is not None and abs(value - self.none_at) < self.step / 2:
            return self.off_value
        return int(round(value)) if self.integer else round(value, 4)

    def format(self, value: Any) -> str:
        if value is None or (self.none_at is not None and value == self.off_value):
            return self.none_label
        return str(value) if self.integer else f"{value:.2f}"

    @property
    def value(self) -> float | int | None:
        if self._slider.value == self._announced_steps:
            return self._setting
        return self._from_steps(self._slider.value)

    def set_value(self, value: float | None) -> None:
        """Move the slider without announcing it (e.g. settings loaded)."""
        with self._slider.prevent(Slider.Changed):
            self._slider.value = self._to_steps(value)
        self._announced_steps = self._slider.value
        self._setting = value
        self._value_label.update(self.format(self.value))

    @property
    def slider(self) -> Slider:
        return self._slider

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="setting-name")
            yield self._value_label
        yield self._slider

    def on_slider_changed(self, event: Slider.Changed) -> None:
        event.stop()
        # the slider announces its starting position when mounted: that is the
        # setting's own value snapped to a step (150 -> 160 tokens), not a choice
        if self._slider.value == self._announced_steps:
            self._value_label.update(self.format(self.value))
            return
        value = self._from_steps(self._slider.value)
        self._announced_steps = self._slider.value
        self._setting = value
        self._value_label.update(self.format(value))
        self.post_message(SettingChanged(self.key, value))
