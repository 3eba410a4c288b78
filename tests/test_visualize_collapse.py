"""Collapsing big graphs and fusing chains (``tarry._tools.visualize.collapse``)."""

from __future__ import annotations

import os
import random
import re
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from visualize_helpers import X, inc, labels_in, needs_dot, shape_lines, tree_sum, tutorial_z

import tarry
from tarry import Delayed, delayed, to_dot, visualize
from tarry._graph import Task, walk
from tarry._tools.visualize import collapse, draw
from tarry._tools.visualize.collapse import CHAIN_MIN, Node, collapsed, task_nodes
from tarry._tools.visualize.dot import COLLAPSE_ABOVE, emit
from tarry._tools.visualize.rendering import render as real_render

# -- collapsing big graphs -------------------------------------------------------------


def test_graphs_above_the_threshold_are_collapsed_by_default() -> None:
    def graph(n: int) -> Delayed[Any]:
        total: Delayed[Any] = delayed(sum)([delayed(inc)(i) for i in range(n)])
        return total

    at = to_dot(graph(COLLAPSE_ABOVE - 1))  # n inc + 1 sum = threshold tasks
    above = to_dot(graph(COLLAPSE_ABOVE))
    assert len(shape_lines(at, "ellipse")) == COLLAPSE_ABOVE
    assert labels_in(above) == [f"inc {X}{COLLAPSE_ABOVE:,}", "sum"]


def test_collapse_false_draws_every_task_and_true_collapses_small_graphs() -> None:
    total = delayed(sum)([delayed(inc)(i) for i in range(1000)])
    assert len(shape_lines(to_dot(total, collapse=False), "ellipse")) == 1001
    assert labels_in(to_dot(tutorial_z(), collapse=True)) == [f"inc {X}2", "add"]


def test_collapsed_tree_reduction_reads_level_by_level() -> None:
    labels = labels_in(to_dot(tree_sum(1024)))
    assert labels == [f"inc {X}1,024"] + [f"add {X}{512 >> i:,}" for i in range(9)] + ["add"]


def test_a_long_chain_is_one_node() -> None:
    value: Delayed[int] = delayed(0, name="zero")
    for _ in range(10_000):
        value = value + 1
    assert labels_in(to_dot(value)) == ["zero", "+ → + → … → +\\n10,000 steps"]


def test_tutorial_chain_of_additions_collapses_into_one_chain() -> None:
    total = sum([delayed(inc)(i) for i in range(400)])
    assert labels_in(to_dot(total)) == [f"inc {X}400", "+ → + → … → +\\n400 steps"]


def test_collapsing_keeps_different_inputs_apart() -> None:
    evens = [delayed(inc)(i) for i in range(200)]
    odds = [delayed(abs)(e) for e in evens[:100]] + [delayed(abs)(i) for i in range(100)]
    dot = to_dot(delayed(sum)([*evens, *odds]), collapse=True)
    assert sorted(labels_in(dot)) == [f"abs {X}100", f"abs {X}100", f"inc {X}200", "sum"]


def test_unstructured_graphs_fall_back_to_one_node_per_function() -> None:
    rng = random.Random(7)
    made: list[Delayed[Any]] = []
    for i in range(2000):
        inputs = rng.sample(made, min(len(made), rng.randint(0, 3)))
        made.append(delayed(max, name="abc"[i % 3])(0, *inputs))
    dot = to_dot(made)
    counts = {
        m.group(1): int(m.group(2).replace(",", ""))
        for m in re.finditer(rf'label="([abc]) {X}([\d,]+)"', dot)
    }
    assert sorted(counts) == ["a", "b", "c"]
    assert sum(counts.values()) == 2000


def test_collapsed_graph_of_100_000_tasks_is_a_few_dozen_nodes_counting_every_task() -> None:
    total = tree_sum(50_000)  # 50,000 incs and 49,999 adds
    dot = to_dot(total)
    ellipses = shape_lines(dot, "ellipse")
    assert len(ellipses) < 40  # about one per level of the tree
    assert dot.count(" -> ") < 80
    assert labels_in(dot)[:3] == [f"inc {X}50,000", f"add {X}25,000", f"add {X}12,500"]
    # every task is one of the drawn nodes' members: ``add`` alone is one task
    members = [re.search(rf'label="\w+(?: {X}([\d,]+))?"', line) for line in ellipses]
    assert all(members), ellipses
    assert sum(int(m[1].replace(",", "")) if m[1] else 1 for m in members if m) == 99_999


@needs_dot
def test_collapsed_graph_of_100_000_tasks_renders_from_its_few_dozen_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Graphviz lays out the collapsed graph, not 100,000 nodes: that keeps drawing quick."""
    total = tree_sum(50_000)
    collapsed_dot = to_dot(total)
    drawn: list[str] = []

    def render(source: str, fmt: str) -> bytes:
        assert source == collapsed_dot  # checked before Graphviz starts on it
        drawn.append(fmt)
        return real_render(source, fmt)

    monkeypatch.setattr(draw, "render", render)
    data = visualize(total, filename=None).data
    assert drawn == ["png"]
    assert isinstance(data, bytes)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")


class TooManyLinesError(Exception):
    """The traced code ran more lines than it was allowed."""


def lines_run(work: Callable[[], object], most: int = 10**9) -> int:
    """Lines of tarry's own code that ``work()`` runs: its work, however fast the machine.

    Past ``most`` lines, ``work`` is stopped with :class:`TooManyLinesError`.
    """
    root = os.path.dirname(tarry.__file__)
    count = 0

    def in_tarry(frame: FrameType, event: str, arg: object) -> Any:
        return count_lines if frame.f_code.co_filename.startswith(root) else None

    def count_lines(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "line":
            count += 1
            if count > most:
                raise TooManyLinesError(f"more than {most:,} lines")
        return count_lines

    before = sys.gettrace()
    sys.settrace(in_tarry)
    try:
        work()
    finally:
        sys.settrace(before)
    return count


def test_drawing_a_collapsed_graph_runs_lines_in_proportion_to_its_tasks() -> None:
    """No stage of drawing grows faster than the graph, which keeps 100,000 tasks quick to draw."""
    small, big = tree_sum(1_000), tree_sum(8_000)
    assert labels_in(to_dot(big))[0] == f"inc {X}8,000"  # collapsed, as graphs this big are
    lines = lines_run(lambda: to_dot(small))
    # 8 times the tasks, about 8 times the lines; lines per pair of tasks would give 64
    assert lines_run(lambda: to_dot(big), most=9 * lines) > 7 * lines


# -- optimize_graph: fused chains ---------------------------------------------------------


def test_optimize_graph_fuses_linear_chains() -> None:
    start = delayed(1, name="one")
    a = delayed(inc)(delayed(inc)(delayed(inc)(start)))
    assert labels_in(to_dot(a, optimize_graph=True)) == ["one", "inc → inc → inc"]
    assert labels_in(to_dot(a)) == ["one", "inc", "inc", "inc"]


def test_optimize_graph_stops_fusing_at_shared_and_requested_outputs() -> None:
    start = delayed(inc).options(key="start")(1)
    shared = delayed(inc).options(key="shared")(start)
    left = delayed(abs)(shared)
    right = delayed(abs)(shared)
    dot = to_dot(left, right, optimize_graph=True)
    # shared feeds two tasks, so start → shared fuse but neither abs joins them
    assert labels_in(dot) == ["inc → inc", "abs", "abs"]
    dot = to_dot(left, start, optimize_graph=True)
    assert labels_in(dot) == ["inc", "inc → abs"]


def test_optimize_graph_compresses_long_mixed_chains() -> None:
    value: Delayed[Any] = delayed(1, name="one")
    for _ in range(3):
        value = delayed(inc)(value)
    for _ in range(3):
        value = delayed(abs)(value)
    assert labels_in(to_dot(value, optimize_graph=True))[1] == f"inc {X}3 → abs {X}3\\n6 steps"


# -- the collapse invariants, on random graphs ---------------------------------------------


@st.composite
def random_graphs(draw: st.DrawFn) -> list[Task]:
    size = draw(st.integers(1, 60))
    tasks: list[Task] = []
    for i in range(size):
        picks = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=3)) if i else []
        deps = tuple(dict.fromkeys(tasks[p] for p in picks))
        name = draw(st.sampled_from(["f", "g", "h"]))
        if not deps and draw(st.booleans()):
            tasks.append(Task.literal(f"v{i}", i))
        else:
            tasks.append(Task(f"t{i}", max, deps, None, deps, name))
    return tasks


@given(random_graphs(), st.booleans(), st.booleans())
@settings(max_examples=150, deadline=None)
def test_every_task_and_dependency_is_drawn_exactly_once(
    tasks: list[Task], fuse: bool, collapse: bool
) -> None:
    targets = {t.key for t in tasks}  # everything requested: nothing is hidden in a chain
    ordered = list(walk(tasks))
    nodes = task_nodes(ordered, set() if fuse else targets, fuse)
    if collapse:
        nodes = collapsed(nodes)
    where = {key: i for i, node in enumerate(nodes) for key in node.keys}
    assert sorted(where) == sorted(targets)
    assert sum(len(node.keys) for node in nodes) == len(tasks)
    for task in tasks:
        for dep in task.deps:
            a, b = where[dep.key], where[task.key]
            assert a == b or a in nodes[b].deps
    for i, node in enumerate(nodes):
        for d in node.deps:
            assert any(where[dep.key] == d for k in node.keys for dep in _task(tasks, k).deps)
            if not collapse:
                assert d != i
    dot = emit(nodes, "BT", None)
    assert dot == emit(nodes, "BT", None)


def _task(tasks: list[Task], key: str) -> Task:
    return next(t for t in tasks if t.key == key)


# -- pieces on their own ----------------------------------------------------------------------


def node(key: str, steps: list[str], deps: list[int], shown: list[str] | None = None) -> Node:
    return Node(key, steps, shown if shown is not None else list(steps), False, [key], deps)


def test_absorbing_counts_members_and_keeps_shown_labels_only_while_they_agree() -> None:
    first = node("a", ["[]"], [], ["[0]"])
    first.absorb(node("b", ["[]"], [], ["[0]"]))
    assert (first.count, first.keys, first.shown, first.target) == (2, ["a", "b"], ["[0]"], False)
    first.absorb(Node("c", ["[]"], ["[1]"], False, ["c", "d"], [], count=2, target=True))
    assert (first.count, first.keys, first.shown, first.target) == (4, list("abcd"), None, True)


def test_task_nodes_fuse_only_calls_whose_input_has_no_other_reader() -> None:
    one = Task.literal("one", 1)
    a = Task("a", abs, (one,), None, (one,), "abs")
    b = Task("b", abs, (a,), None, (a,), "abs")
    c = Task("c", abs, (b,), None, (b,), "abs")
    d = Task("d", max, (b, c), None, (b, c), "max")
    nodes = task_nodes([one, a, b, c, d], {"d"}, fuse=True)
    assert [(n.keys, n.deps, n.target) for n in nodes] == [
        (["one"], [], False),
        (["a", "b"], [0], False),  # the value stays apart; b has two readers
        (["c"], [1], False),
        (["d"], [1, 2], True),
    ]
    assert len(task_nodes([one, a, b, c, d], {"d"}, fuse=False)) == 5


def test_alike_nodes_are_grouped_only_when_their_inputs_are_grouped_alike() -> None:
    nodes = [
        node("x", ["x"], []),
        node("y", ["y"], []),
        node("f1", ["f"], [0]),
        node("f2", ["f"], [0]),
        node("f3", ["f"], [1]),  # same step, other input
    ]
    groups = collapsed(nodes)
    assert [(g.keys, g.deps, g.count) for g in groups] == [
        (["x"], [], 1),
        (["y"], [], 1),
        (["f1", "f2"], [0], 2),
        (["f3"], [1], 1),
    ]


@pytest.mark.parametrize("length", [CHAIN_MIN - 1, CHAIN_MIN])
def test_chains_are_one_node_from_chain_min_groups_on(length: int) -> None:
    nodes = [Node("start", ["start"], ["start"], True, ["start"], [])]  # a value: never in a chain
    nodes += [node(f"s{i}", [f"s{i}"], [i]) for i in range(length)]
    groups = collapsed(nodes)
    if length < CHAIN_MIN:
        assert len(groups) == 1 + length
    else:
        assert [g.steps for g in groups] == [["start"], [f"s{i}" for i in range(length)]]
        assert groups[1].keys == [f"s{i}" for i in range(length)]
        assert groups[1].deps == [0]


def test_too_many_groups_become_one_node_per_kind_of_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collapse, "MAX_GROUPS", 3)
    # four "f" tasks, each on its own distinct input: four groups of one
    nodes = [node(f"v{i}", [f"v{i}"], []) for i in range(4)]
    nodes += [node(f"f{i}", ["f"], [i]) for i in range(4)]
    groups = collapsed(nodes)
    assert [(g.steps, g.count, g.shown) for g in groups] == [
        (["v0"], 1, None),
        (["v1"], 1, None),
        (["v2"], 1, None),
        (["v3"], 1, None),
        (["f"], 4, None),
    ]
    assert groups[-1].deps == [0, 1, 2, 3]


def test_a_value_beside_a_collapsed_chain_is_still_drawn_as_a_value() -> None:
    x: Any = delayed(0, name="zero")
    for _ in range(1000):
        x = x + 1
    lines = [line for line in to_dot(x).splitlines() if "zero" in line]
    assert '  "r:zero" [label="zero", shape=box];' in lines
    assert not any(line.startswith('  "f:zero"') for line in lines)  # not a function call
