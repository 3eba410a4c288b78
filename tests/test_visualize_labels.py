"""Labels of tasks in pictures (``tarry._build.labels``): Python's syntax back, names, values."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

import pytest
from visualize_helpers import HAVE_DOT, inc, labels_in

from tarry import Delayed, delayed, to_dot
from tarry._build import labels
from tarry._build.labels import method_caller, shorten, task_labels
from tarry._graph import Task
from tarry._tools.visualize.dot import dot_text
from tarry._tools.visualize.rendering import render

# -- labels -------------------------------------------------------------------------

OPERATOR_CASES: list[tuple[Callable[[Any], Any], str]] = [
    (lambda x: x + 1, "+"),
    (lambda x: 1 + x, "+"),
    (lambda x: x - 1, "-"),
    (lambda x: x * 2, "*"),
    (lambda x: x / 2, "/"),
    (lambda x: x // 2, "//"),
    (lambda x: x % 2, "%"),
    (lambda x: x**2, "**"),
    (lambda x: x @ x, "@"),
    (lambda x: x << 1, "<<"),
    (lambda x: x >> 1, ">>"),
    (lambda x: x & 1, "&"),
    (lambda x: x | 1, "|"),
    (lambda x: x ^ 1, "^"),
    (lambda x: x < 1, "<"),
    (lambda x: x <= 1, "<="),
    (lambda x: x == 1, "=="),
    (lambda x: x != 1, "!="),
    (lambda x: x > 1, ">"),
    (lambda x: x >= 1, ">="),
    (lambda x: -x, "-x"),
    (lambda x: +x, "+x"),
    (lambda x: ~x, "~x"),
    (lambda x: abs(x), "abs"),
    (lambda x: divmod(x, 2), "divmod"),
    (lambda x: x[0], "[0]"),
    (lambda x: x["a"], "['a']"),
    (lambda x: x[::2], "[::2]"),
    (lambda x: x[1:3], "[1:3]"),
    (lambda x: x[delayed(0)], "[]"),
    (lambda x: x.real, ".real"),
    (lambda x: x.count(2), ".count()"),
    (lambda x: delayed(operator.add)(x, 1), "+"),
]


@pytest.mark.parametrize(("build", "label"), OPERATOR_CASES)
def test_operators_attributes_and_methods_are_labelled_like_python(
    build: Callable[[Any], Any], label: str
) -> None:
    x = delayed([1, 2, 3], name="x")
    assert labels_in(to_dot(build(x)))[-1] == label


def test_functions_are_labelled_by_name_and_values_by_value_or_chosen_name() -> None:
    a = delayed(5)
    b = delayed(7, name="seven")
    c = delayed(list(range(100)))
    out = delayed(max)(delayed(inc)(a), b, c)
    assert labels_in(to_dot(out)) == ["5", "inc", "seven", "list", "max"]


def test_labels_and_keys_with_dot_syntax_are_escaped_and_render_intact() -> None:
    nasty = 'a "quoted" \\N back\nslash'
    out = delayed(inc, name=nasty).options(key='k"ey\\')(1)
    dot = to_dot(out)
    assert '"f#' in dot  # a key DOT cannot carry gets a hashed id
    assert "label=" + dot_text(nasty) in dot
    if HAVE_DOT:
        svg = render(dot, "svg").decode()
        texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
        assert texts == ["a &quot;quoted&quot; \\N back", "slash"]


# -- the operator table, shared with delayed.py ------------------------------------------


def test_every_operator_delayed_overloads_is_in_the_table() -> None:
    table = [
        *labels.BINARY_OPERATORS,
        *labels.COMPARISONS,
        *labels.EQUALITY,
        *labels.UNARY_OPERATORS,
    ]
    for func, _ in table:
        name = func.__name__.strip("_")
        assert f"__{name}__" in vars(Delayed)
    for func, _ in labels.BINARY_OPERATORS:
        assert f"__r{func.__name__.strip('_')}__" in vars(Delayed)
    # each operator method runs the function of its own table row
    x = delayed(6, name="x")
    assert (x - 1)._task.func is operator.sub
    assert (1 - x)._task.args == (1, x._task)
    assert divmod(x, 4)._task.func is divmod


def test_symbols_cover_both_spellings_of_and_or_and_nothing_without_a_symbol() -> None:
    symbols = {name: symbol for name, (_, symbol) in labels._SYMBOLS.items()}
    assert symbols["and"] == symbols["and_"] == "&"
    assert symbols["or"] == symbols["or_"] == "|"
    assert symbols["matmul"] == "@"
    assert "abs" not in symbols
    assert "divmod" not in symbols
    assert len(symbols) == 24


def test_a_function_named_like_an_operator_is_labelled_by_its_name() -> None:
    x = delayed(1, name="x")
    assert task_labels(delayed(operator.add, name="plus")(x, 1)._task) == ("plus", "plus")
    assert task_labels(delayed(max, name="add")(x, 1)._task) == ("add", "add")


# -- pieces on their own ----------------------------------------------------------------


def test_method_callers_are_labelled_as_method_calls() -> None:
    def run_method(obj: Any, name: str, *args: Any) -> Any:
        return getattr(obj, name)(*args)

    task = Task("k", run_method, ("a b", "split"), None, (), "split")
    assert task_labels(task) == ("split", "split")
    assert method_caller(run_method) is run_method
    try:
        assert task_labels(task) == (".split()", ".split()")
    finally:
        labels._METHOD_CALLERS.discard(run_method)


def test_values_show_small_scalars_chosen_names_or_their_type() -> None:
    assert task_labels(Task.literal("int-0123456789ab", 42)) == ("int", "42")
    assert task_labels(Task.literal("seven", 7)) == ("int", "seven")
    assert task_labels(Task.literal("list-0123456789ab", [1, 2])) == ("list", "list")
    assert task_labels(Task.literal("int-0123456789ab", 2**70)) == ("int", "int")
    long = task_labels(Task.literal("str-0123456789ab", "x" * 50))[1]
    assert long == repr("x" * 20) + "…"


def test_indexes_are_shown_like_python_and_grouped_together() -> None:
    x = delayed([1, 2, 3], name="x")
    shown = [task_labels(x[i]._task) for i in (0, slice(1, None), slice(None, None, -1))]
    assert shown == [("[]", "[0]"), ("[]", "[1:]"), ("[]", "[::-1]")]
    assert task_labels(x[slice("a", "b")]._task) == ("[]", "[]")
    assert task_labels(x[(1, 2)]._task) == ("[]", "[]")


def test_long_labels_are_shortened() -> None:
    assert shorten("a" * 40) == "a" * 40
    assert shorten("a" * 41) == "a" * 39 + "…"
    x = delayed("s", name="x")
    assert task_labels(getattr(x, "m" * 60)()._task)[1] == shorten("." + "m" * 60 + "()")
    assert len(task_labels(delayed(inc, name="n" * 60)(x)._task)[1]) == labels.LABEL_MAX
