"""Text for people: durations, chains of function names, counts, lists of findings.

Every diagnostic that prints (reports, explanations, timelines, pictures)
writes these things through the functions here, so a duration or a chain
reads the same wherever it appears.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

__all__ = [
    "TIMES",
    "counted",
    "describe_error",
    "format_chain",
    "format_seconds",
    "pretty_as_text",
    "with_findings",
]

#: the multiplication sign, as in "inc ×10,000"
TIMES: Final = "\u00d7"

#: longest error text a record keeps: a message may hold a whole data frame
MAX_ERROR_CHARS: Final = 300

# chains of up to this many steps are written out in full
_WRITTEN_OUT: Final = 4


def format_seconds(seconds: float) -> str:
    """A duration with three significant digits and the unit that suits it.

    Examples
    --------
    >>> [format_seconds(s) for s in (123.4, 12.34, 2.0, 0.5, 0.0123, 0.00042, 2e-5, 3e-7)]
    ['123 s', '12.3 s', '2.00 s', '500 ms', '12.3 ms', '420 µs', '20.0 µs', '300 ns']
    """
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            value = seconds / scale
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f} {unit}"
    return f"{seconds * 1e9:.0f} ns"


def format_chain(steps: Sequence[str]) -> str:
    """A chain of function names: short ones in full, longer ones with repeats counted.

    A chain of one repeated name is drawn as ``a → a → … → a``: how long it
    is, the caller says beside it ("5 tasks", "10,000 steps"), where ``a ×5``
    could be read as five tasks side by side. More than four groups keep
    the first two and the last.

    Examples
    --------
    >>> format_chain(["inc", "add"]), format_chain(["inc"] * 3)
    ('inc → add', 'inc → inc → inc')
    >>> format_chain(["read"] + ["inc"] * 40 + ["add"])
    'read → inc ×40 → add'
    >>> format_chain(["+"] * 10_000)
    '+ → + → … → +'
    >>> format_chain(["a", "b", "b", "c", "d", "e"]), format_chain([f"f{i}" for i in range(10)])
    ('a → b ×2 → … → e', 'f0 → f1 → … → f9')
    """
    if len(steps) <= _WRITTEN_OUT:
        return " → ".join(steps)
    groups: list[tuple[str, int]] = []
    for step in steps:
        if groups and groups[-1][0] == step:
            groups[-1] = (step, groups[-1][1] + 1)
        else:
            groups.append((step, 1))
    if len(groups) == 1:
        return f"{steps[0]} → {steps[0]} → … → {steps[0]}"
    parts = [step if n == 1 else f"{step} {TIMES}{n:,}" for step, n in groups]
    if len(parts) > _WRITTEN_OUT:
        parts = [*parts[:2], "…", parts[-1]]
    return " → ".join(parts)


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless there is exactly one.

    Examples
    --------
    >>> counted(1, "worker"), counted(2, "worker"), counted(12000, "task")
    ('1 worker', '2 workers', '12,000 tasks')
    """
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def describe_error(error: BaseException) -> str:
    """``"TypeName: message"``, shortened to :data:`MAX_ERROR_CHARS`; never raises.

    Examples
    --------
    >>> describe_error(ValueError("bad input")), describe_error(KeyboardInterrupt())
    ('ValueError: bad input', 'KeyboardInterrupt')
    >>> len(describe_error(ValueError("x" * 1000)))
    300
    """
    try:
        message = str(error)
    except Exception:  # a user exception's __str__ may itself be broken
        message = "<message unavailable>"
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return text


def with_findings(lines: list[str], findings: Sequence[str]) -> str:
    """``lines``, then the findings as a list, as one text (reports and explanations).

    Examples
    --------
    >>> print(with_findings(["tarry graph: 2 tasks"], ["one chain"]))
    tarry graph: 2 tasks
    Findings:
      - one chain
    """
    if findings:
        lines = [*lines, "Findings:", *(f"  - {finding}" for finding in findings)]
    return "\n".join(lines)


def pretty_as_text(self: object, printer: Any, cycle: bool) -> None:
    """An ``_repr_pretty_`` that shows the object in IPython as its ``str()``.

    Assigned in the class body (``_repr_pretty_ = pretty_as_text``), not
    inherited: IPython prefers a dataclass's own ``__repr__`` over an
    inherited ``_repr_pretty_``.
    """
    printer.text(str(self))
