"""The right-hand panel: model facts, context size, system prompt, sampler controls.

Every sampler control posts ``SettingChanged``; the App turns that into
``LiveSettings.update`` so the very next token of a reply in flight uses it.
The context size posts ``ContextSizeChosen`` (a new KV cache, set by the
App in a worker); the memory that cache takes is shown beside it. The
prompt-lookup switch and the draft-model picker post ``SpeculationChanged``.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static, Switch, TextArea

from chord_core.model_facts import BASE_MODEL_LABEL, format_size
from chord_core.sampling import SamplerSettings
from chord_tui.engine import LoadedModelInfo, kv_cache_bytes
from chord_tui.messages import ContextSizeChosen, SettingChanged, SpeculationChanged, SystemPromptChanged
from chord_tui.widgets.setting_slider import SettingSlider

# key, label, low, high, step, none_at, none_label, off_value (what the engine takes for it), integer
SLIDERS: tuple[tuple, ...] = (
    ("temperature", "Temperature", 0.0, 2.0, 0.05, None, "", None, False),
    ("top_p", "Top-p", 0.0, 1.0, 0.01, None, "", None, False),
    ("top_k", "Top-k", 0, 200, 1, 0, "off", 0, True),
    ("min_p", "Min-p", 0.0, 1.0, 0.01, None, "", None, False),
    ("repeat_penalty", "Repeat penalty", 1.0, 2.0, 0.01, None, "", None, False),
    ("max_tokens", "Max tokens", 0, 4096, 32, 0, "∞", None, True),
)


SMALLEST_CONTEXT_CHOICE = 512


def context_choices(n_ctx_train: int, current: int) -> list[int]:
    """Powers of two from 512 up to the training context, the training context
    itself, and the context in use."""
    sizes = {n for n in (current, n_ctx_train) if n > 0}
    n = SMALLEST_CONTEXT_CHOICE
    while n < n_ctx_train:
        sizes.add(n)
        n *= 2
    return sorted(sizes)


class SidePanel(VerticalScroll):
    def __init__(self, settings: SamplerSettings, *, id: str | None = None, cursor_blink: bool = True,
                 lookup: bool = True) -> None:
        super().__init__(id=id)
        self._lookup = lookup
        self._settings = settings
        self._cursor_blink = cursor_blink
        self._info: LoadedModelInfo | None = None

    def compose(self) -> ComposeResult:
        yield Label("Model", classes="panel-heading")
        yield Static("no model loaded", id="model-name")
        yield Static("", id="template-source")
        kind = Static("", id="model-kind")
        kind.display = False  # shown for a base model only
        yield kind
        with Horizontal(classes="setting-row"):
            yield Label("Context", classes="setting-name")
            yield Label("", id="kv-memory", classes="setting-value")
        yield Select([], id="context-size", compact=True, prompt="no model", disabled=True)
        yield Label("System prompt", classes="panel-heading")
        prompt = TextArea(id="system-prompt", soft_wrap=True, compact=True, placeholder="(none)")
        prompt.cursor_blink = self._cursor_blink
        yield prompt
        yield Label("Sampling", classes="panel-heading")
        for key, label, low, high, step, none_at, none_label, off_value, integer in SLIDERS:
            yield SettingSlider(key, label, low, high, step, getattr(self._settings, key),
                                none_at=none_at, none_label=none_label, off_value=off_value, integer=integer)
        yield Label("Seed", classes="setting-name")
        seed = self._settings.seed
        # digits only: a seed is a whole number from 0 to 2^32 - 1 (llama.cpp's seeds are
        # 32-bit); a larger one is refused with a notice
        seed_input = Input("" if seed is None else str(seed), placeholder="random", restrict=r"[0-9]*",
                           max_length=10, id="seed", compact=True)
        seed_input.cursor_blink = self._cursor_blink
        yield seed_input
        # speculative decoding: exact at temperature 0, so a plain on/off and a draft model
        yield Label("Speculative decoding", classes="panel-heading")
        with Horizontal(classes="setting-row"):
            yield Label("Prompt lookup", classes="setting-name")
            yield Switch(self._lookup, id="spec-lookup", animate=False)
        yield Label("Draft model", classes="setting-name")
        yield Select([], id="draft-model", compact=True, prompt="none")

    def show_model(self, info: LoadedModelInfo | None, loading: str = "") -> None:
        name = self.query_one("#model-name", Static)
        source = self.query_one("#template-source", Static)
        kind = self.query_one("#model-kind", Static)
        if loading:
            name.update(loading)
            source.update("")
        elif info is None:
            name.update("no model loaded")
            source.update("")
        else:
            name.update(f"{info.name}\n{info.architecture} · {info.quant} · ctx {info.n_ctx}")
            source.update(f"template: {info.template_source}")
        base = info is not None and not loading and not info.has_chat_template
        kind.update(BASE_MODEL_LABEL if base else "")
        kind.display = base
        self._info = None if loading else info
        self._show_context(self._info)

    def _show_context(self, info: LoadedModelInfo | None) -> None:
        select = self.query_one("#context-size", Select)
        with select.prevent(Select.Changed):
            if info is None or not info.n_ctx:  # none loaded, or a server that does not say
                select.set_options([])
                select.disabled = True
            else:
                train = info.n_ctx_train or info.n_ctx
                select.set_options([(f"{n} (trained)" if n == train else str(n), n)
                                    for n in context_choices(train, info.n_ctx)])
                select.value = info.n_ctx
                select.disabled = False
        self._show_kv_memory(info.n_ctx if info is not None else None)

    def _show_kv_memory(self, n_ctx: int | None) -> None:
        info = self._info
        text = f"KV {format_size(kv_cache_bytes(info, n_ctx))}" if info is not None and info.kv_bytes_per_token else ""
        self.query_one("#kv-memory", Label).update(text)

    def show_speculation(self, lookup: bool, draft: str | None, choices: list[str] | None = None) -> None:
        """The engine's speculation; ``choices``: the models a draft may be (None: as they were)."""
        switch = self.query_one("#spec-lookup", Switch)
        with switch.prevent(Switch.Changed):
            switch.value = lookup
        select = self.query_one("#draft-model", Select)
        with select.prevent(Select.Changed):
            if choices is not None:
                select.set_options([(name, name) for name in choices])
            if draft is None:
                select.clear()
            else:
                select.value = draft

    def _post_speculation(self) -> None:
        draft = self.query_one("#draft-model", Select).value
        self.post_message(SpeculationChanged(self.query_one("#spec-lookup", Switch).value,
                                             draft if isinstance(draft, str) else None))

    def on_switch_changed(self, event: Switch.Changed) -> None:
        if event.switch.id == "spec-lookup":
            event.stop()
            self._post_speculation()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "draft-model":
            event.stop()
            self._post_speculation()
            return
        if event.select.id != "context-size" or not isinstance(event.value, int):
            return
        event.stop()
        self._show_kv_memory(event.value)
        self.post_message(ContextSizeChosen(event.value))

    def set_system_prompt(self, text: str) -> None:
        area = self.query_one("#system-prompt", TextArea)
        if area.text != text:
            with area.prevent(TextArea.Changed):
                area.text = text

    def set_settings(self, settings: SamplerSettings) -> None:
        for slider in self.query(SettingSlider):
            slider.set_value(getattr(settings, slider.key))

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "system-prompt":
            event.stop()
            self.post_message(SystemPromptChanged(event.text_area.text))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "seed":
            return
        event.stop()
        text = event.value.strip()
        if not text:
            self.post_message(SettingChanged("seed", None))
        elif text.isdigit():
            self.post_message(SettingChanged("seed", int(text)))
