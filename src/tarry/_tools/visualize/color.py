"""Colours for the drawn nodes: from the record of the last run, or the cache's dry run.

``to_dot(..., color=...)`` fills nodes and adds a legend:

* ``"status"``: done (green), failed (red), not run (grey), or partly done
  for a collapsed group whose members differ;
* ``"duration"``: measured run time on a logarithmic yellow-to-red scale,
  each node labelled with its (total) time;
* ``"order"`` (dask's name): the place of each task in the graph's order,
  dependencies first (the order ``x.graph`` lists them), light to dark, each
  node labelled with its place; it needs no run.
* ``"cache"``: what a compute with a cache would do to each task (a dry run,
  :func:`tarry._cache.explain.plan`: nothing is loaded or run): load it
  (a hit), run it because it is new (a miss), run it because it was
  invalidated (its code, or a function it calls, changed, or an input that
  was invalidated runs again), run it without a key (not cacheable), or
  skip it (only hits read it); each node's tooltip gives the reason.

The first two read :func:`tarry._tools.last_run.last_run`; nothing here knows how a
node is written as DOT text. The result is a :class:`Paint`, which
:func:`tarry._tools.visualize.dot.emit` merges into the text.

Examples
--------
>>> from tarry._tools.visualize.collapse import Node
>>> nodes = [Node("a", ["inc"], ["inc"], False, ["a"], [])]
>>> paint_status(nodes, {"a": "done"}, ran=True).fill
{0: '#a1d99b'}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from tarry._cache.explain import CachePlan, TaskPlan
from tarry._graph import Task
from tarry._tools.last_run import DONE, FAILED, NOT_IN_RUN, NOT_RUN, Status, last_run
from tarry._tools.text import TIMES, format_seconds
from tarry._tools.visualize.collapse import Node

__all__ = [
    "ALIKE_RATIO",
    "CACHE_FILL",
    "COLORS",
    "HEAT",
    "ORDER",
    "NO_TIMINGS_HELP",
    "SHORTEST",
    "STATUS_FILL",
    "Paint",
    "paint",
    "paint_cache",
    "paint_duration",
    "paint_order",
    "paint_status",
]

#: the values of ``color=`` besides None
COLORS: Final = ("status", "duration", "order", "cache")

#: fill colour of a node by the status of its tasks in the last run: light
#: shades of ColorBrewer's Greens, Reds and Greys, on which black text reads
STATUS_FILL: Final[dict[str, str]] = {
    DONE: "#a1d99b",
    "partly done": "#e5f5e0",
    FAILED: "#fb6a4a",
    NOT_RUN: "#d9d9d9",
}
#: fill colour of a node by what a cached compute would do to its tasks, in
#: the order a group of mixed tasks is coloured (the first present wins):
#: what runs, and why, before what does not run
CACHE_FILL: Final[dict[str, str]] = {
    "invalidated": "#fdae6b",  # Oranges: it ran before, but what it depends on changed
    "new": "#9ecae1",  # Blues: never stored
    "not cacheable": "#bdbdbd",  # Greys: runs every time
    "load": "#a1d99b",  # Greens, as status "done": the result is there
    "skip": "#f7f7f7",  # almost white: not needed
}
# the legend's rows, in the order a run goes: what loads, what runs, what is left
_CACHE_LEGEND: Final = {
    "load": "load: a hit",
    "new": "run: new",
    "invalidated": "run: invalidated by an edit",
    "not cacheable": "run: not cacheable",
    "skip": "skip: not needed",
}
#: a tooltip lists at most this many distinct reasons of a node's tasks
_REASONS_SHOWN: Final = 3
#: ColorBrewer's YlOrRd in 6 classes, one per bin: light is quick, dark is slow
HEAT: Final = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
#: ColorBrewer's Blues in 6 classes, one per bin: light is early, dark is late
ORDER: Final = ("#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
# black text is hard to read on the two darkest reds (and blues)
_HEAT_FONT: Final = {4: "white", 5: "white"}
_STATUSES: Final = (DONE, FAILED, NOT_RUN, NOT_IN_RUN)
#: run times (seconds) below this count as this on the log scale, which has no
#: place for 0. A judgement: a nanosecond, far below what timing a task costs
SHORTEST: Final = 1e-9
#: when the slowest node took at most this times the quickest one's time, all
#: took alike (but for float rounding): one colour, the middle of the scale
ALIKE_RATIO: Final = 1.0 + 1e-9

NO_TIMINGS_HELP: Final = """\
color="duration" needs per-task timings, and the last compute recorded none. \
Compute again inside a profile block, then draw:
    with tarry.profile():
        result.compute()
    result.visualize(color="duration")
(tarry._tools.last_run.record_timings() records the timings alone, without the profile.)"""


@dataclass(slots=True)
class Paint:
    """Colours and extra label lines for some nodes (by index), plus a legend.

    ``legend`` is a Graphviz HTML-like table (the text inside ``<...>``).
    """

    fill: dict[int, str] = field(default_factory=dict)
    font: dict[int, str] = field(default_factory=dict)
    extra: dict[int, str] = field(default_factory=dict)
    #: text shown when the pointer rests on the node (in SVG pictures)
    tooltip: dict[int, str] = field(default_factory=dict)
    legend: str | None = None


def paint(
    color: str | None,
    nodes: Sequence[Node],
    tasks: Sequence[Task],
    plan: CachePlan | None = None,
) -> Paint | None:
    """The colours ``color=`` asks for, from the last run; None for no colours.

    Parameters
    ----------
    color
        None, ``"status"``, ``"duration"``, ``"order"`` or ``"cache"`` (checked
        by the caller).
    nodes
        The drawn nodes.
    tasks
        Every task of the graph (those the nodes stand for).
    plan
        For ``"cache"``: the dry run of a compute with the cache.

    Raises
    ------
    ValueError
        For ``"duration"`` when the last run recorded no timings; the
        message says how to record them.

    Examples
    --------
    >>> from tarry import delayed
    >>> from tarry._graph import walk
    >>> from tarry._tools.visualize.collapse import task_nodes
    >>> x = delayed(abs)(-1)
    >>> x.compute(scheduler="sync")
    1
    >>> tasks = list(walk([x._task]))
    >>> paint("status", task_nodes(tasks, {x.key}, fuse=False), tasks).fill
    {0: '#a1d99b'}
    """
    if color is None:
        return None
    if color == "order":
        return paint_order(nodes, tasks)
    if color == "cache":
        if plan is None:
            raise ValueError('color="cache" needs the dry run of a compute with a cache')
        return paint_cache(nodes, tasks, plan)
    record = last_run()
    if color == "status":
        if record is None:
            statuses: dict[str, Status] = dict.fromkeys((t.key for t in tasks), NOT_IN_RUN)
        else:
            statuses = record.statuses(tasks)
        return paint_status(nodes, statuses, record is not None)
    durations = None if record is None else record.durations()
    if durations is None:
        raise ValueError(NO_TIMINGS_HELP)
    return paint_duration(nodes, durations)


def paint_status(nodes: Sequence[Node], statuses: dict[str, Status], ran: bool) -> Paint:
    """Fill each node by its tasks' statuses; a group of mixed statuses says how many.

    Values (literal nodes) are never filled: they do not run. ``ran`` is
    False before any compute, which the legend's title says.

    Examples
    --------
    >>> group = Node("a", ["inc"], ["inc"], False, ["a", "b", "c"], [], 3)
    >>> painted = paint_status([group], {"a": "done", "b": "not run", "c": "not run"}, ran=True)
    >>> painted.fill, painted.extra
    ({0: '#e5f5e0'}, {0: '1 of 3 done'})
    """
    painted = Paint()
    totals = dict.fromkeys(_STATUSES, 0)
    partly = False
    for i, node in enumerate(nodes):
        if node.literal:
            continue
        counts = dict.fromkeys(_STATUSES, 0)
        for key in node.keys:
            counts[statuses[key]] += 1
        for status, count in counts.items():
            totals[status] += count
        if counts[FAILED]:
            painted.fill[i] = STATUS_FILL[FAILED]
            if len(node.keys) > 1:
                painted.extra[i] = f"{counts[FAILED]:,} failed"
        elif counts[DONE] and counts[NOT_RUN]:
            partly = True
            painted.fill[i] = STATUS_FILL["partly done"]
            painted.extra[i] = f"{counts[DONE]:,} of {counts[DONE] + counts[NOT_RUN]:,} done"
        elif counts[DONE]:
            painted.fill[i] = STATUS_FILL[DONE]
        elif counts[NOT_RUN]:
            painted.fill[i] = STATUS_FILL[NOT_RUN]
    rows = [
        (STATUS_FILL[status], f"{status} ({totals[status]:,})")
        for status in (DONE, FAILED, NOT_RUN)
        if totals[status]
    ]
    if partly:
        rows.insert(1, (STATUS_FILL["partly done"], "partly done"))
    if totals[NOT_IN_RUN]:
        rows.append(("white", f"not in the last run ({totals[NOT_IN_RUN]:,})"))
    painted.legend = _legend("last run" if ran else "nothing computed yet", rows)
    return painted


def paint_duration(nodes: Sequence[Node], durations: dict[str, float]) -> Paint:
    """Fill each timed node by its (total) run time, on a log scale from quickest to slowest.

    A log scale, because run times of one graph often span orders of
    magnitude, and a linear one would paint all but the slowest alike.

    Examples
    --------
    >>> quick = Node("a", ["inc"], ["inc"], False, ["a"], [])
    >>> slow = Node("b", ["nap"], ["nap"], False, ["b"], [0])
    >>> painted = paint_duration([quick, slow], {"a": 0.001, "b": 1.0})
    >>> painted.fill == {0: HEAT[0], 1: HEAT[-1]}, painted.extra
    (True, {0: '1.00 ms', 1: '1.00 s'})
    """
    painted = Paint()
    totals: dict[int, float] = {}
    for i, node in enumerate(nodes):
        timed = [durations[k] for k in node.keys if k in durations]
        if timed:
            totals[i] = sum(timed)
    if not totals:
        painted.legend = _legend("run time", [("white", "no timings for these tasks")])
        return painted
    low = max(min(totals.values()), SHORTEST)
    high = max(max(totals.values()), low)
    ratio = high / low
    bins = len(HEAT)
    for i, seconds in totals.items():
        if ratio <= ALIKE_RATIO:
            b = bins // 2
        else:
            b = min(bins - 1, int(bins * math.log(max(seconds, low) / low) / math.log(ratio)))
        painted.fill[i] = HEAT[b]
        if b in _HEAT_FONT:
            painted.font[i] = _HEAT_FONT[b]
        total = "total " if len(nodes[i].keys) > 1 else ""
        painted.extra[i] = total + format_seconds(seconds)
    if ratio <= ALIKE_RATIO:
        rows = [(HEAT[bins // 2], format_seconds(high))]
    else:
        edges = [low * ratio ** (b / bins) for b in range(bins + 1)]
        rows = [
            (HEAT[b], f"{format_seconds(edges[b])} to {format_seconds(edges[b + 1])}")
            for b in range(bins)
        ]
    painted.legend = _legend("run time", rows)
    return painted


def paint_order(nodes: Sequence[Node], tasks: Sequence[Task]) -> Paint:
    """Fill each node by the place of its first task in ``tasks``, early light, late dark.

    Examples
    --------
    >>> first = Node("a", ["inc"], ["inc"], False, ["a"], [])
    >>> last = Node("b", ["add"], ["add"], False, ["b"], [0])
    >>> painted = paint_order([first, last], [Task.literal("a", 1), Task.literal("b", 2)])
    >>> painted.fill == {0: ORDER[0], 1: ORDER[-1]}, painted.extra
    (True, {0: 'order 1', 1: 'order 2'})
    """
    place = {t.key: i for i, t in enumerate(tasks)}
    painted = Paint()
    bins = len(ORDER)
    last = max(len(tasks) - 1, 1)
    for i, node in enumerate(nodes):
        first = min(place[k] for k in node.keys)
        b = min(bins - 1, bins * first // last)
        painted.fill[i] = ORDER[b]
        if b in _HEAT_FONT:
            painted.font[i] = _HEAT_FONT[b]
        painted.extra[i] = f"order {first + 1:,}"
    edges = [round(last * b / bins) + 1 for b in range(bins + 1)]
    rows = [(ORDER[b], f"{edges[b]:,} to {edges[b + 1]:,}") for b in range(bins)]
    painted.legend = _legend("order (dependencies first)", rows)
    return painted


def paint_cache(nodes: Sequence[Node], tasks: Sequence[Task], plan: CachePlan) -> Paint:
    """Fill each node by what a compute with the cache would do to its tasks; tooltips say why.

    A node of mixed tasks takes the colour of the first kind present in
    :data:`CACHE_FILL`'s order, and a line counting each kind.

    Examples
    --------
    >>> from tarry._cache.explain import TaskPlan
    >>> one, two = Task("a", abs, (), None, (), "f"), Task("b", abs, (), None, (), "f")
    >>> group = Node("a", ["f"], ["f"], False, ["a", "b"], [], 2)
    >>> plan = CachePlan("here", [TaskPlan("a", "f", "load", "stored under its key"),
    ...                           TaskPlan("b", "f", "run", "new")])
    >>> painted = paint_cache([group], [one, two], plan)
    >>> painted.fill == {0: CACHE_FILL["new"]}, painted.extra, painted.tooltip
    (True, {0: '1 new, 1 load'}, {0: '1 × run: new\\n1 × load: stored under its key'})
    """
    kinds = cache_kinds(plan, tasks)
    rank = {kind: i for i, kind in enumerate(CACHE_FILL)}
    why = {t.key: f"{t.action}: {t.reason}" for t in plan.tasks}
    painted = Paint()
    totals = dict.fromkeys(CACHE_FILL, 0)
    for i, node in enumerate(nodes):
        keys = [k for k in node.keys if k in kinds]
        if not keys:  # a value: nothing to load or run
            continue
        counts = dict.fromkeys(CACHE_FILL, 0)
        for key in keys:
            counts[kinds[key]] += 1
        for kind, count in counts.items():
            totals[kind] += count
        painted.fill[i] = CACHE_FILL[next(kind for kind in CACHE_FILL if counts[kind])]
        if len(keys) == 1:
            painted.tooltip[i] = why[keys[0]]
            continue
        present = sorted((k for k in CACHE_FILL if counts[k]), key=lambda k: -counts[k])
        if len(present) > 1:
            painted.extra[i] = ", ".join(f"{counts[k]:,} {k}" for k in present)
        reasons: dict[str, int] = {}
        for key in sorted(keys, key=lambda k: rank[kinds[k]]):  # ties: in the kinds' order
            reasons[why[key]] = reasons.get(why[key], 0) + 1
        common = sorted(reasons.items(), key=lambda kv: -kv[1])
        lines = [f"{count:,} {TIMES} {reason}" for reason, count in common[:_REASONS_SHOWN]]
        if len(common) > _REASONS_SHOWN:
            lines.append(f"… ({len(common) - _REASONS_SHOWN} more reasons)")
        painted.tooltip[i] = "\n".join(lines)
    rows = [
        (CACHE_FILL[k], f"{text} ({totals[k]:,})") for k, text in _CACHE_LEGEND.items() if totals[k]
    ]
    painted.legend = _legend(f"cache at {plan.location}", rows)
    return painted


def cache_kinds(plan: CachePlan, tasks: Sequence[Task]) -> dict[str, str]:
    """Per task of ``plan``, one of :data:`CACHE_FILL`'s keys.

    A task that runs because an input runs is *invalidated* when such an
    input is (an edit upstream), *new* when those inputs are new.

    Examples
    --------
    >>> from tarry._cache.explain import TaskPlan
    >>> a = Task("a", abs, (), None, (), "f")
    >>> b = Task("b", abs, (a,), None, (a,), "g")
    >>> plan = CachePlan("here", [TaskPlan("a", "f", "run", "`f` changed (its code)"),
    ...                           TaskPlan("b", "g", "run", "input `a` will be recomputed")])
    >>> cache_kinds(plan, [a, b])
    {'a': 'invalidated', 'b': 'invalidated'}
    """
    deps = {t.key: t.deps for t in tasks}
    kinds: dict[str, str] = {}
    for task in plan.tasks:  # inputs first
        kinds[task.key] = _kind(task, [kinds.get(d.key) for d in deps[task.key]])
    return kinds


def _kind(task: TaskPlan, inputs: list[str | None]) -> str:
    """What happens to ``task``, from the reason :func:`tarry._cache.explain.plan` gives."""
    if task.action != "run":
        return task.action
    if task.reason.startswith("not cacheable"):
        return "not cacheable"
    if task.reason.startswith(f"`{task.name}` changed"):
        return "invalidated"
    if task.reason.startswith("input ") and "invalidated" in inputs:
        return "invalidated"
    return "new"


def _legend(title: str, rows: Iterable[tuple[str, str]]) -> str:
    """A Graphviz HTML-like table: the title, then a colour swatch and a text per row."""
    import html  # here, not at the top: `import tarry` stays free of it

    cells = [
        f'<TR><TD COLSPAN="2"><B>{html.escape(title)}</B></TD></TR>',
        *(
            f'<TR><TD BGCOLOR="{colour}" WIDTH="18"> </TD>'
            f'<TD ALIGN="LEFT">{html.escape(text)}</TD></TR>'
            for colour, text in rows
        ),
    ]
    return (
        '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">'
        + "".join(cells)
        + "</TABLE>"
    )
