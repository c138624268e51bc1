"""A Jinja sandbox whose renders are bounded in time, output and memory.

A chat template is code from a downloaded file. Jinja's immutable sandbox
stops it reaching Python's internals, but not from spending unbounded time
(``{% for i in range(100000) %}{% for j in range(100000) %}``) or memory
(``{{ 'x' * 2000000000 }}``). The bounds are enforced inside the render,
on the rendering thread, with no watchdog left running:

- time: every loop step, call, filter, operator and output looks at a
  deadline;
- size: every value the template builds (operator, call and filter results,
  ``~`` joins, output) is at most ``TemplateLimits.output_chars`` characters
  as text, and operations that would blow a small value up (``'x' * n``,
  ``s.center(n)``, ``sep.join(xs)``, ``'%*d' % (n, 1)``, ``s|indent(n)``)
  are refused *before* they allocate;
- memory: all the text a render builds, kept or not, counts against a work
  budget (``WORK_FACTOR`` times the output limit), and so does each loop step,
  so a loop that accumulates values runs out of budget long before it runs
  the process out of memory.

Over a bound, the render raises ``TemplateOverBudget`` with the limit in
words; ``chat_template`` names the template in front of it.
"""

from __future__ import annotations

import functools
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

DEFAULT_SECONDS = 2.0
CHARS_PER_CONTEXT_TOKEN = 16  # a few times a token's ~4 characters
MIN_OUTPUT_CHARS = 65536
DEFAULT_CONTEXT = 8192  # for a render that does not know the session's context
WORK_FACTOR = 16  # all text a render builds: this many times its output limit
LOOP_STEP_UNITS = 64  # what one loop step costs the work budget, besides its literal text
MAX_RANGE = 100_000
MAX_JSON_INDENT = 16
_LOOP = "__chord_loop"
_JOIN = "__chord_join"


class TemplateOverBudget(Exception):
    """A render went over one of its limits; the message says which."""


@dataclass(frozen=True)
class TemplateLimits:
    seconds: float = DEFAULT_SECONDS
    output_chars: int = CHARS_PER_CONTEXT_TOKEN * DEFAULT_CONTEXT

    @classmethod
    def for_prompt(cls, n_ctx: int | None, input_chars: int, seconds: float = DEFAULT_SECONDS) -> TemplateLimits:
        """A prompt holds at most the context plus the messages given (a
        conversation longer than the context is rendered whole, then cut)."""
        base = max(CHARS_PER_CONTEXT_TOKEN * (n_ctx or DEFAULT_CONTEXT), MIN_OUTPUT_CHARS)
        return cls(seconds=seconds, output_chars=base + 2 * input_chars)


def text_size(value: Any, limit: int) -> int:
    """About ``len(str(value))``, computed without building it; stops counting once past ``limit``."""
    total, stack, seen = 0, [value], set()
    while stack and total <= limit:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v)
        elif isinstance(v, (bytes, bytearray)):
            total += 4 * len(v) + 3
        elif isinstance(v, bool) or v is None:
            total += 5
        elif isinstance(v, int):
            total += v.bit_length() * 30103 // 100000 + 2
        elif isinstance(v, (list, tuple, set, frozenset, dict, Namespace)):
            if id(v) in seen:
                continue
            seen.add(id(v))
            if isinstance(v, Namespace):
                v = object.__getattribute__(v, "_Namespace__attrs")
            items = [x for kv in v.items() for x in kv] if isinstance(v, dict) else v
            total += 2 + 2 * len(items)
            stack.extend(items)
        else:
            total += 32
    return total


def _units(value: Any) -> int:
    """What a value costs the work budget: its length, without walking into it."""
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 8
    return 1


class _Budget:
    def __init__(self, limits: TemplateLimits):
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.work_left = WORK_FACTOR * limits.output_chars

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateOverBudget(f"ran past its {self.limits.seconds:g} s time budget")

    def spend(self, units: int) -> None:
        self.work_left -= units
        if self.work_left < 0:
            raise TemplateOverBudget(f"went over its work limit ({WORK_FACTOR * self.limits.output_chars:,} "
                                     f"characters of text built, {LOOP_STEP_UNITS} a loop step)")

    def refuse_over(self, size: int, what: str) -> None:
        if size > self.limits.output_chars:
            raise TemplateOverBudget(f"would build {what} of about {size:,} characters, over its "
                                     f"{self.limits.output_chars:,}-character limit")

    def check_value(self, value: Any, what: str) -> Any:
        self.refuse_over(text_size(value, self.limits.output_chars), what)
        self.spend(_units(value))
        return value


_current: ContextVar[_Budget | None] = ContextVar("chord_template_budget", default=None)


def _budget() -> _Budget:
    budget = _current.get()
    if budget is None:  # only ever rendered through bounded_render
        raise TemplateOverBudget("was rendered without limits")
    return budget


def bounded_render(template, limits: TemplateLimits, context: dict[str, Any]) -> str:
    """Render ``template`` (compiled by a ``BoundedSandbox``) within ``limits``."""
    budget = _Budget(limits)
    token = _current.set(budget)
    try:
        parts, size = [], 0
        for chunk in template.generate(**context):
            size += len(chunk)
            budget.refuse_over(size, "an output")
            parts.append(chunk)
        return "".join(parts)
    finally:
        _current.reset(token)


# --- size estimates for the operations that amplify -------------------------------------------

_NUMBERS = re.compile(r"\d+")


def _largest_number(text: str) -> int:
    return max((int(n) for n in _NUMBERS.findall(text[:100_000])), default=0)


def _format_size(fmt: str, args: Iterable[Any], limit: int) -> int:
    """An upper bound on ``fmt % args`` or ``fmt.format(*args)``: every field as
    wide as the widest argument plus the widest width written or passed."""
    args = list(args)
    widest = max((text_size(a, limit) for a in args), default=0)
    widths = max([_largest_number(fmt)] + [a for a in args if isinstance(a, int) and not isinstance(a, bool)])
    fields = fmt.count("%") + fmt.count("{")
    return len(fmt) + fields * (widest + widths)


def _percent_args(right: Any) -> list[Any]:
    if isinstance(right, tuple):
        return list(right)
    if isinstance(right, dict):
        return list(right.values())
    return [right]


def _binop_size(op: str, left: Any, right: Any, limit: int) -> int:
    """The size of ``left op right`` where it could be large, else 0."""
    seqs = (str, bytes, list, tuple)
    if op == "*":
        if isinstance(left, int) and isinstance(right, seqs):
            left, right = right, left
        if isinstance(left, seqs) and isinstance(right, int):
            return text_size(left, limit) * max(right, 0)
        if isinstance(left, int) and isinstance(right, int):
            return (abs(left).bit_length() + abs(right).bit_length()) // 3
    if op == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
        return abs(left).bit_length() * right // 3
    if op == "+" and isinstance(left, seqs) and isinstance(right, seqs):
        return text_size(left, limit) + text_size(right, limit)
    if op == "%" and isinstance(left, str):
        return _format_size(left, _percent_args(right), limit)
    return 0


def _method_size(method: Any, args: tuple, kwargs: dict, limit: int) -> int:
    """The size of a ``str``/``bytes`` method call's result where it could be large, else 0."""
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(owner, (str, bytes)):
        return 0
    values = list(args) + list(kwargs.values())
    ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if name in ("center", "ljust", "rjust", "zfill"):
        return max([len(owner)] + ints)
    if name == "expandtabs":
        return len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * max(ints + [8])
    if name == "join" and args:
        items = list(args[0]) if not isinstance(args[0], (str, bytes)) else args[0]
        return text_size(items, limit) + len(owner) * len(items)
    if name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = owner.count(old) if old else len(owner) + 1
        return len(owner) + count * max(len(new) - len(old), 0)
    if name == "translate":
        table = args[0] if args else None
        widest = max((text_size(v, limit) for v in table.values()), default=1) if isinstance(table, dict) else 1
        return len(owner) * widest
    return 0


def _filter_size(name: str, values: list[Any], limit: int) -> int:
    """The size of an amplifying filter's result, from its arguments, else 0."""
    if not values:
        return 0
    value, params = values[0], values[1:]
    ints = [v for v in params if isinstance(v, int) and not isinstance(v, bool)]
    text = text_size(value, limit)
    if name == "indent":
        width = params[0] if params else 4
        width = len(width) if isinstance(width, str) else width if isinstance(width, int) else 4
        lines = value.count("\n") + 1 if isinstance(value, str) else 1
        return text + lines * width
    if name in ("center", "format", "wordwrap", "join", "replace", "tojson", "pprint", "string", "xmlattr",
                "urlencode", "truncate", "batch", "slice", "e", "escape", "forceescape"):
        if name == "format" and isinstance(value, str):
            return _format_size(value, params, limit)
        if name == "join":
            seq = list(value) if not isinstance(value, (str, Namespace)) else value
            sep = params[0] if params and isinstance(params[0], str) else ""
            return text_size(seq, limit) + len(sep) * len(seq)
        if name == "replace" and isinstance(value, str) and len(params) >= 2:
            return _method_size(value.replace, tuple(params[:2]), {}, limit)
        if name == "wordwrap":
            wrap = next((p for p in params if isinstance(p, str)), "\n")
            width = max(ints[0] if ints else 79, 1)
            return text + (text // width + 1 + (value.count("\n") if isinstance(value, str) else 0)) * len(wrap)
        if name in ("e", "escape", "forceescape"):
            return 6 * text  # '&quot;' for '"'
        return max([text] + ints) + sum(text_size(p, limit) for p in params)
    return 0


# --- the environment ------------------------------------------------------------------------


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with every render bounded (see the module's docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any):
        super().__init__(finalize=self._finalize_output, **options)
        self.globals.pop("lipsum", None)  # writes n paragraphs: an amplifier no chat template needs
        self.globals["range"] = self._range
        self.globals[_LOOP] = _bounded_loop
        self.globals[_JOIN] = self._join
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def add_filter(self, name: str, function: Any) -> None:
        self.filters[name] = _bounded_filter(name, function)

    def compile_bounded(self, source: str):
        """Compile ``source`` with every loop stepping through the budget and every ``~`` join checked."""
        return self.from_string(_BoundedTree().visit(self.parse(source)))

    # -- hooks Jinja's sandbox calls ----------------------------------------------------------
    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        budget.tick()
        budget.refuse_over(_binop_size(operator, left, right, budget.limits.output_chars),
                           f"a value with {operator!r}")
        return budget.check_value(super().call_binop(context, operator, left, right), f"a value with {operator!r}")

    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        budget = _budget()
        budget.tick()
        name = getattr(__obj, "__name__", "a call")
        budget.refuse_over(_method_size(__obj, args, kwargs, budget.limits.output_chars), f"a value with {name}()")
        result = super().call(__context, __obj, *args, **kwargs)
        return budget.check_value(result, f"a value with {name}()")

    def wrap_str_format(self, value: Any):
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = value.__self__

        @functools.wraps(wrapped)
        def checked(*args: Any, **kwargs: Any) -> str:
            budget = _budget()
            budget.refuse_over(_format_size(fmt, [*args, *kwargs.values()], budget.limits.output_chars),
                               "a value with str.format()")
            return wrapped(*args, **kwargs)

        return checked

    @staticmethod
    def _finalize_output(value: Any) -> str:
        budget = _current.get()
        if budget is None:  # a constant folded at compile time
            return str(value)
        budget.tick()
        budget.refuse_over(text_size(value, budget.limits.output_chars), "an output value")
        text = str(value)
        budget.spend(len(text))
        return text

    @staticmethod
    def _range(*args: int) -> range:
        steps = range(*args)
        if len(steps) > MAX_RANGE:
            raise TemplateOverBudget(f"asked for a range of {len(steps):,} steps (its limit is {MAX_RANGE:,})")
        return steps  # every for loop steps through _bounded_loop

    @staticmethod
    def _join(*parts: Any) -> str:
        budget = _budget()
        budget.tick()
        budget.refuse_over(sum(text_size(p, budget.limits.output_chars) for p in parts), "a value with '~'")
        text = "".join(str(p) for p in parts)
        budget.spend(len(text))
        return text


class _BoundedTree(NodeTransformer):
    """Rewrites a parsed template: each loop's items come through ``_bounded_loop``,
    each ``a ~ b`` through ``BoundedSandbox._join`` (which checks the size first)."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        literal = sum(len(t.data) for stmt in node.body for t in stmt.find_all(nodes.TemplateData))
        node.iter = nodes.Call(nodes.Name(_LOOP, "load"), [node.iter, nodes.Const(literal)], [], None, None)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        self.generic_visit(node)
        return nodes.Call(nodes.Name(_JOIN, "load"), list(node.nodes), [], None, None)


def _bounded_loop(iterable: Any, literal_chars: int) -> Iterator[Any]:
    """The items of ``iterable``, each step paid for: a look at the clock and
    the work budget (the step itself and the literal text its body writes)."""
    budget = _budget()
    cost = LOOP_STEP_UNITS + literal_chars
    for item in iterable:
        budget.tick()
        budget.spend(cost)
        yield item


def _bounded_filter(name: str, function: Any) -> Any:
    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.tick()
        values = [a for a in args if not isinstance(a, (ImmutableSandboxedEnvironment,)) and not _is_context(a)]
        budget.refuse_over(_filter_size(name, values + list(kwargs.values()), budget.limits.output_chars),
                           f"a value with the '{name}' filter")
        if name == "tojson" and (kwargs.get("indent") or 0) > MAX_JSON_INDENT:
            raise TemplateOverBudget(f"asked tojson for an indent of {kwargs['indent']} (its limit is "
                                     f"{MAX_JSON_INDENT})")
        return budget.check_value(function(*args, **kwargs), f"a value with the '{name}' filter")

    return bounded


def _is_context(value: Any) -> bool:
    from jinja2.nodes import EvalContext
    from jinja2.runtime import Context

    return isinstance(value, (Context, EvalContext))
