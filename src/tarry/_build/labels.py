"""How the tasks that :mod:`tarry._build.delayed` builds are named in pictures.

``delayed.py`` turns Python syntax into tasks: ``x + 1`` runs
``operator.add``, ``x.split()`` runs a method-call helper, ``x[0]`` runs
``operator.getitem``. A picture should show the syntax back (``+``,
``.split()``, ``[0]``), so the knowledge of what each task means lives
here, beside the builder, and not in the drawing code:

* the operator table: ``delayed.py`` installs ``Delayed.__add__`` and the
  rest from it, and :func:`task_labels` reads the symbols from the same
  table, so the two cannot drift apart;
* the method-call helper, which ``delayed.py`` marks with
  :func:`method_caller` (it cannot be imported from here: ``delayed.py``
  imports this module, not the other way round).

This module imports nothing of tarry but the task type, so the drawing
code (``tarry._tools.visualize``) can use it without importing the builder.

Examples
--------
>>> from tarry import delayed
>>> x = delayed([1, 2, 3], name="x")
>>> [task_labels(v._task)[1] for v in (x + 1, -x, x[1:], x.count(2), x.real, x)]
['+', '-x', '[1:]', '.count()', '.real', 'x']
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

from tarry._graph import Task

__all__ = [
    "BINARY_OPERATORS",
    "COMPARISONS",
    "EQUALITY",
    "LABEL_MAX",
    "UNARY_OPERATORS",
    "method_caller",
    "shorten",
    "task_labels",
]

F = TypeVar("F", bound=Callable[..., Any])
#: an operator's function, and the symbol pictures show (None: its name)
Operator = tuple[Callable[..., Any], str | None]

# The operators Delayed overloads. A task's name is the function's name
# without underscores ("and" for operator.and_), as delayed.py gives it.

#: ``x + y`` and ``y + x``: Delayed gets ``__add__`` and the reflected ``__radd__``
BINARY_OPERATORS: Final[tuple[Operator, ...]] = (
    (operator.add, "+"),
    (operator.sub, "-"),
    (operator.mul, "*"),
    (operator.matmul, "@"),
    (operator.truediv, "/"),
    (operator.floordiv, "//"),
    (operator.mod, "%"),
    (operator.pow, "**"),
    (operator.lshift, "<<"),
    (operator.rshift, ">>"),
    (operator.and_, "&"),
    (operator.xor, "^"),
    (operator.or_, "|"),
    (divmod, None),
)
#: ``x < y``: no reflected method (Python turns ``1 < x`` into ``x > 1`` itself)
COMPARISONS: Final[tuple[Operator, ...]] = (
    (operator.lt, "<"),
    (operator.le, "<="),
    (operator.gt, ">"),
    (operator.ge, ">="),
)
#: ``==`` and ``!=``: Delayed defines these two itself, where it can declare
#: that they return a Delayed and not a bool
EQUALITY: Final[tuple[Operator, ...]] = ((operator.eq, "=="), (operator.ne, "!="))
#: ``-x``
UNARY_OPERATORS: Final[tuple[Operator, ...]] = (
    (operator.neg, "-x"),
    (operator.pos, "+x"),
    (operator.invert, "~x"),
    (operator.abs, None),
)

# task name -> (function, symbol). A task gets its symbol only when it runs
# that very function: delayed(f, name="add") stays "add". Both spellings of
# and_/or_ are here, as delayed(operator.and_) names its tasks "and_".
_SYMBOLS: Final[dict[str, tuple[Callable[..., Any], str]]] = {
    name: (func, symbol)
    for func, symbol in (*BINARY_OPERATORS, *COMPARISONS, *EQUALITY, *UNARY_OPERATORS)
    if symbol is not None
    for name in (func.__name__, func.__name__.strip("_"))
}

# Helpers that run ``obj.<name>(*args)`` as ``helper(obj, name, *args)``.
_METHOD_CALLERS: set[Callable[..., Any]] = set()

#: labels longer than this many characters are cut, with "…" at the end
LABEL_MAX: Final = 40
# A key made by tarry (``name-<hex>``) says nothing a reader wants to see.
_GENERATED_KEY: Final = re.compile(r".+-[0-9a-f]{10,}")


def method_caller(func: F) -> F:
    """Mark ``func(obj, name, *args)`` as running ``obj.name(*args)``; returns ``func``.

    Its tasks are labelled ``.name()``. ``delayed.py`` marks its helper when
    it defines it, so every task that can run the helper comes after the mark.

    Examples
    --------
    >>> @method_caller
    ... def call(obj, name, *args):
    ...     return getattr(obj, name)(*args)
    >>> task_labels(Task("k", call, ("a b", "split"), None, (), "split"))
    ('.split()', '.split()')
    """
    _METHOD_CALLERS.add(func)
    return func


def shorten(text: str, limit: int = LABEL_MAX) -> str:
    """``text``, cut to ``limit`` characters with "…" at the end when longer.

    Examples
    --------
    >>> shorten("inc"), shorten("abcdef", 4)
    ('inc', 'abc…')
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


def task_labels(task: Task) -> tuple[str, str]:
    """How a task is named in pictures: a coarse label for grouping, and the label shown.

    The two differ only where the shown label includes an argument
    (``[0]`` versus ``[1]``, a literal's value), so that collapsing still
    groups such tasks.

    Parameters
    ----------
    task
        Any task; those built by ``delayed.py`` for operators, indexing,
        attribute access and method calls get Python's syntax back.

    Returns
    -------
    tuple of str
        ``(coarse, shown)``, each at most :data:`LABEL_MAX` characters.

    Examples
    --------
    >>> from tarry import delayed
    >>> x = delayed([1, 2, 3])
    >>> task_labels((x + 1)._task), task_labels(x[0]._task), task_labels(x.count(2)._task)
    (('+', '+'), ('[]', '[0]'), ('.count()', '.count()'))
    """
    func, name = task.func, task.name
    if func is None:
        return shorten(name), _literal_text(task)
    entry = _SYMBOLS.get(name)
    if entry is not None and func is entry[0]:
        return entry[1], entry[1]
    if func is getattr and len(task.args) == 2 and type(task.args[1]) is str:
        text = shorten("." + task.args[1])
        return text, text
    if func in _METHOD_CALLERS:
        text = shorten(f".{name}()")
        return text, text
    if func is operator.getitem and name == "getitem" and len(task.args) == 2:
        return "[]", _index_text(task.args[1])
    text = shorten(name)
    return text, text


def _literal_text(task: Task) -> str:
    """A value's label: the key the user chose, else a small value itself, else its type."""
    key = task.key
    if not _GENERATED_KEY.fullmatch(key):
        return shorten(key)  # a name the user chose
    shown = _scalar_text(task.args[0])
    return shorten(task.name) if shown is None else shorten(shown)


def _scalar_text(value: Any) -> str | None:
    """A short text for small scalars; None for anything else (never an expensive repr).

    Examples
    --------
    >>> _scalar_text(3), _scalar_text("a" * 30), _scalar_text(2**70), _scalar_text([1])
    ('3', "'aaaaaaaaaaaaaaaaaaaa'…", None, None)
    """
    kind = type(value)  # exact types: a subclass's repr is the user's code
    if value is None or kind is bool:
        return repr(value)
    if kind is int:
        return repr(value) if value.bit_length() <= 64 else None
    if kind is float or kind is complex:
        return repr(value)
    if kind is str or kind is bytes:
        return repr(value[:20]) + ("…" if len(value) > 20 else "")
    return None


def _index_text(index: Any) -> str:
    """``[0]``, ``['a']``, ``[1:3]``; ``[]`` for an index that has no short text.

    Examples
    --------
    >>> _index_text(0), _index_text(slice(None, None, 2)), _index_text([1, 2])
    ('[0]', '[::2]', '[]')
    """
    if type(index) is slice:
        parts = (index.start, index.stop, index.step)
        if all(p is None or type(p) is int for p in parts):
            text = ":".join("" if p is None else str(p) for p in parts[:2])
            if index.step is not None:
                text += f":{index.step}"
            return f"[{text}]"
        return "[]"
    if type(index) is Task:  # an index computed by another task
        return "[]"
    shown = _scalar_text(index)
    return "[]" if shown is None else shorten(f"[{shown}]", 20)
