"""Colours for the drawn nodes, from the record of the last run.

``to_dot(..., color=...)`` fills nodes and adds a legend:

* ``"status"``: done (green), failed (red), not run (grey), or partly done
  for a collapsed group whose members differ;
* ``"duration"``: measured run time on a logarithmic yellow-to-red scale,
  each node labelled with its (total) time;
* ``"order"`` (dask's name): the place of each task in the graph's order,
  dependencies first (the order ``x.graph`` lists them), light to dark, each
  node labelled with its place; it needs no run.

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

from tarry._graph import Task
from tarry._tools.last_run import DONE, FAILED, NOT_IN_RUN, NOT_RUN, Status, last_run
from tarry._tools.text import format_seconds
from tarry._tools.visualize.collapse import Node

__all__ = [
    "ALIKE_RATIO",
    "COLORS",
    "HEAT",
    "ORDER",
    "NO_TIMINGS_HELP",
    "SHORTEST",
    "STATUS_FILL",
    "Paint",
    "paint",
    "paint_duration",
    "paint_order",
    "paint_status",
]

#: the values of ``color=`` besides None
COLORS: Final = ("status", "duration", "order")

#: fill colour of a node by the status of its tasks in the last run: light
#: shades of ColorBrewer's Greens, Reds and Greys, on which black text reads
STATUS_FILL: Final[dict[str, str]] = {
    DONE: "#a1d99b",
    "partly done": "#e5f5e0",
    FAILED: "#fb6a4a",
    NOT_RUN: "#d9d9d9",
}
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
    legend: str | None = None


def paint(color: str | None, nodes: Sequence[Node], tasks: Sequence[Task]) -> Paint | None:
    """The colours ``color=`` asks for, from the last run; None for no colours.

    Parameters
    ----------
    color
        None, ``"status"``, ``"duration"`` or ``"order"`` (checked by the caller).
    nodes
        The drawn nodes.
    tasks
        Every task of the graph (those the nodes stand for).

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
