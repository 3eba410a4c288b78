"""Pictures of task graphs: :func:`to_dot`, :func:`visualize` and the HTML repr of ``Delayed``.

The picture follows dask's: an ellipse per function call, a box per result,
arrows from inputs to outputs, drawn bottom to top. Three things differ:

* The DOT text is the same in every process for the same graph: node ids
  are the task keys themselves (hashed only when a key has characters DOT
  cannot carry), never ``hash()``, and everything is emitted in walk order.
* Big graphs are collapsed: tasks doing the same thing to the same kind of
  inputs become one node with a count (``inc \u00d710,000``), and long chains
  become one node, so a 100,000-task graph is a picture of a few dozen nodes
  that ``dot`` lays out in well under a second.
* Without Graphviz's ``dot`` program the error says how to install it, and
  :func:`to_dot` (and ``format="dot"``) keep working: the DOT text is built
  here, with no third-party package.

Examples
--------
>>> from tarry import delayed, to_dot
>>> x = delayed(lambda v: v + 1, name="inc").options(key="x")(1)
>>> print(to_dot(x), end="")
digraph tarry {
  graph [rankdir=BT, ranksep=0.3];
  node [fontname="Helvetica,Arial,sans-serif", fontsize=12];
  edge [arrowsize=0.8];
  "f:x" [label="inc", shape=ellipse];
  "r:x" [label="", shape=box, width=0.3, height=0.2, penwidth=2];
  "f:x" -> "r:x";
}
"""

from __future__ import annotations

import gc
import hashlib
import math
import operator
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tarry._build.delayed import _call_method
from tarry._build.traverse import pack
from tarry._graph import Lazy, Task, walk
from tarry._tools.last_run import DONE, FAILED, NOT_IN_RUN, NOT_RUN, Status, last_run

__all__ = [
    "FORMATS",
    "GraphvizNotFoundError",
    "Picture",
    "html_repr",
    "render",
    "to_dot",
    "visualize",
]

#: output formats :func:`visualize` writes; "dot" needs no Graphviz program
FORMATS: Final = ("png", "svg", "pdf", "dot")
_SUFFIXES: Final = {"png": "png", "svg": "svg", "pdf": "pdf", "dot": "dot", "gv": "dot"}
_RANKDIRS: Final = ("BT", "TB", "LR", "RL")
_COLORS: Final = ("status", "duration")

#: graphs with more tasks than this are collapsed unless ``collapse=`` says otherwise
COLLAPSE_ABOVE: Final = 300
#: a run of at least this many chained groups is drawn as one node when collapsing
_CHAIN_MIN: Final = 5
#: when collapsing still leaves more nodes than this, group by function alone
_MAX_GROUPS: Final = 400
#: the HTML repr draws graphs of at most this many tasks
_INLINE_MAX: Final = 50
#: the HTML repr stops counting tasks here, so displaying a huge graph stays quick
_COUNT_LIMIT: Final = 100_000
_LABEL_MAX: Final = 40
_TIMES: Final = "\u00d7"  # the multiplication sign, as in "inc x10,000"

INSTALL_HELP: Final = """\
Drawing a task graph needs Graphviz's `dot` program, which is not on this \
machine's PATH. Install Graphviz, then restart Python:
    Debian/Ubuntu:  sudo apt-get install graphviz
    conda:          conda install -c conda-forge graphviz python-graphviz
    macOS:          brew install graphviz
    Windows:        winget install graphviz   (and add its bin folder to PATH)
(`pip install graphviz` installs only the Python package, not the program.)
Without the program, tarry.to_dot(...) still returns the graph as DOT text, and \
visualize(format="dot") or a filename ending in .dot writes that text to a file."""

NO_TIMINGS_HELP: Final = """\
color="duration" needs per-task timings, and the last compute recorded none. \
Compute again inside a profile block, then draw:
    with tarry.profile():
        result.compute()
    result.visualize(color="duration")
(tarry._tools.last_run.record_timings() records the timings alone, without the profile.)"""


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is missing; the message says how to install it."""


# -- labels ------------------------------------------------------------------

_OPERATORS: Final[dict[str, tuple[Callable[..., Any], str]]] = {
    "add": (operator.add, "+"),
    "sub": (operator.sub, "-"),
    "mul": (operator.mul, "*"),
    "truediv": (operator.truediv, "/"),
    "floordiv": (operator.floordiv, "//"),
    "mod": (operator.mod, "%"),
    "pow": (operator.pow, "**"),
    "matmul": (operator.matmul, "@"),
    "lshift": (operator.lshift, "<<"),
    "rshift": (operator.rshift, ">>"),
    "and": (operator.and_, "&"),
    "and_": (operator.and_, "&"),
    "or": (operator.or_, "|"),
    "or_": (operator.or_, "|"),
    "xor": (operator.xor, "^"),
    "lt": (operator.lt, "<"),
    "le": (operator.le, "<="),
    "eq": (operator.eq, "=="),
    "ne": (operator.ne, "!="),
    "gt": (operator.gt, ">"),
    "ge": (operator.ge, ">="),
    "neg": (operator.neg, "-x"),
    "pos": (operator.pos, "+x"),
    "invert": (operator.invert, "~x"),
}
# A key made by tarry (``name-<hex>``) says nothing a reader wants to see.
_GENERATED_KEY: Final = re.compile(r".+-[0-9a-f]{10,}")
# Keys made only of these characters are used as DOT ids as they are.
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_.,:;/@+=()\[\]{}<>!?$%&*'~^| -]{1,80}")


def _shorten(text: str, limit: int = _LABEL_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar_text(value: Any) -> str | None:
    """A short text for small scalars; None for anything else (never an expensive repr)."""
    kind = type(value)
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
    return "[]" if shown is None else _shorten(f"[{shown}]", 20)


def labels(task: Task) -> tuple[str, str]:
    """How a task is named in pictures: a coarse label for grouping, and the label shown.

    The two differ only where the shown label includes an argument
    (``[0]`` versus ``[1]``, a literal's value), so that collapsing still
    groups such tasks.

    Examples
    --------
    >>> from tarry import delayed
    >>> x = delayed([1, 2, 3])
    >>> labels((x + 1)._task), labels(x[0]._task), labels(x.count(2)._task)
    (('+', '+'), ('[]', '[0]'), ('.count()', '.count()'))
    """
    func, name = task.func, task.name
    if func is None:
        return _shorten(name), _literal_text(task)
    entry = _OPERATORS.get(name)
    if entry is not None and func is entry[0]:
        return entry[1], entry[1]
    if func is getattr and len(task.args) == 2 and type(task.args[1]) is str:
        text = _shorten("." + task.args[1])
        return text, text
    if func is _call_method:
        text = _shorten(f".{name}()")
        return text, text
    if func is operator.getitem and name == "getitem" and len(task.args) == 2:
        return "[]", _index_text(task.args[1])
    text = _shorten(name)
    return text, text


def _literal_text(task: Task) -> str:
    key = task.key
    if not _GENERATED_KEY.fullmatch(key):
        return _shorten(key)  # a name the user chose
    shown = _scalar_text(task.args[0])
    return _shorten(task.name) if shown is None else _shorten(shown)


# -- the graph as drawn ----------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Node:
    """One drawn node: a task, a fused chain of tasks, or a group of alike ones."""

    key: str  # the output's key (for a group: of its first member); gives the DOT id
    steps: list[str]  # coarse labels along the chain; one for a plain task
    shown: list[str] | None  # labels to show, when every member agrees on them
    literal: bool
    keys: list[str]  # every task this node stands for
    deps: list[int]  # indices of the nodes it reads from, distinct
    count: int = 1  # alike members side by side (collapsed)
    target: bool = False


def _units(tasks: Sequence[Task], targets: set[str], fuse: bool) -> list[_Node]:
    """One node per task; with ``fuse``, linear chains of calls become one node."""
    users: dict[str, int] = {}
    if fuse:
        for task in tasks:
            for dep in task.deps:
                users[dep.key] = users.get(dep.key, 0) + 1
    index: dict[str, int] = {}
    nodes: list[_Node] = []
    for task in tasks:
        coarse, shown = labels(task)
        literal = task.func is None
        deps = task.deps
        if fuse and not literal and len(deps) == 1:
            only = deps[0].key
            node = nodes[index[only]]
            # the input's output must be needed here alone, and not asked for
            if users[only] == 1 and only not in targets and not node.literal:
                node.steps.append(coarse)
                assert node.shown is not None  # units always carry their labels
                node.shown.append(shown)
                node.keys.append(task.key)
                node.key = task.key
                node.target = task.key in targets
                index[task.key] = index[only]
                continue
        index[task.key] = len(nodes)
        if len(deps) <= 1:
            dep_ids = [index[d.key] for d in deps]
        else:
            dep_ids = list(dict.fromkeys([index[d.key] for d in deps]))
        nodes.append(
            _Node(task.key, [coarse], [shown], literal, [task.key], dep_ids, 1, task.key in targets)
        )
    return nodes


def _collapse(units: list[_Node]) -> list[_Node]:
    """Group nodes doing the same thing to the same groups, in one pass (inputs first).

    Consumes ``units``: the first member of each group becomes the group.
    """
    groups: list[_Node] = []
    by_signature: dict[tuple[Any, ...], int] = {}
    group_of: list[int] = []
    for unit in units:
        deps = unit.deps
        if len(deps) == 1:
            dep_groups: tuple[int, ...] = (group_of[deps[0]],)
        elif deps:
            dep_groups = tuple(sorted({group_of[d] for d in deps}))
        else:
            dep_groups = ()
        steps = unit.steps
        signature = (steps[0] if len(steps) == 1 else tuple(steps), unit.literal, dep_groups)
        g = by_signature.get(signature)
        if g is None:
            g = by_signature[signature] = len(groups)
            unit.deps = list(dep_groups)
            groups.append(unit)
        else:
            group = groups[g]
            group.count += 1
            group.keys.extend(unit.keys)
            group.target = group.target or unit.target
            if group.shown is not None and group.shown != unit.shown:
                group.shown = None
        group_of.append(g)
    groups = _fuse_chains(groups)
    if len(groups) > _MAX_GROUPS:
        groups = _group_by_label(groups)
    return groups


def _fuse_chains(groups: list[_Node]) -> list[_Node]:
    """Draw runs of at least ``_CHAIN_MIN`` groups, each feeding only the next, as one node."""
    n = len(groups)
    successors = [0] * n
    for group in groups:
        for d in group.deps:
            successors[d] += 1
    previous = [-1] * n
    following = [-1] * n
    for g, group in enumerate(groups):
        if group.literal:
            continue
        for d in group.deps:
            before = groups[d]
            if (
                successors[d] == 1
                and before.count == group.count
                and not before.literal
                and not before.target
            ):
                previous[g] = d
                following[d] = g
                break
    new_id = list(range(n))
    runs: list[list[int]] = []
    for g in range(n):
        if previous[g] != -1:
            continue
        run = [g]
        while following[run[-1]] != -1:
            run.append(following[run[-1]])
        if len(run) >= _CHAIN_MIN:
            runs.append(run)
    if not runs:
        return groups
    head_of: dict[int, int] = {}
    for run in runs:
        for g in run:
            head_of[g] = run[0]
    order = [g for g in range(n) if head_of.get(g, g) == g]
    for position, g in enumerate(order):
        new_id[g] = position
    for g, head in head_of.items():
        new_id[g] = new_id[head]
    fused: list[_Node] = []
    run_of = {run[0]: run for run in runs}
    for g in order:
        members = run_of.get(g, [g])
        last = groups[members[-1]]
        steps = [step for m in members for step in groups[m].steps]
        shown_parts = [groups[m].shown for m in members]
        shown = None
        if all(p is not None for p in shown_parts):
            shown = [s for p in shown_parts for s in p or ()]
        inside = set(members)
        deps = list(
            dict.fromkeys(new_id[d] for m in members for d in groups[m].deps if d not in inside)
        )
        keys = [k for m in members for k in groups[m].keys]
        fused.append(_Node(last.key, steps, shown, False, keys, deps, last.count, last.target))
    return fused


def _group_by_label(groups: Sequence[_Node]) -> list[_Node]:
    """The coarsest summary: one node per kind of step, whatever its inputs."""
    by_label: dict[tuple[Any, ...], int] = {}
    new_id: list[int] = []
    merged: list[_Node] = []
    for group in groups:
        signature = (tuple(group.steps), group.literal)
        m = by_label.get(signature)
        if m is None:
            m = by_label[signature] = len(merged)
            merged.append(
                _Node(group.key, list(group.steps), None, group.literal, [], [], 0, False)
            )
        node = merged[m]
        node.count += group.count
        node.keys.extend(group.keys)
        node.target = node.target or group.target
        new_id.append(m)
    inputs: list[dict[int, None]] = [{} for _ in merged]  # ordered sets
    for group, m in zip(groups, new_id, strict=True):
        inputs[m].update(dict.fromkeys(new_id[d] for d in group.deps))
    for node, found in zip(merged, inputs, strict=True):
        node.deps = list(found)
    return merged


# -- DOT text -----------------------------------------------------------------------


def _dot_id(prefix: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return f'"{prefix}:{key}"'
    # '#' never occurs in a plain key, so hashed ids cannot meet plain ones
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()
    return f'"{prefix}#{digest}"'


def _dot_text(text: str) -> str:
    """A DOT double-quoted label: backslashes and quotes escaped, newlines as line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _chain_text(steps: Sequence[str]) -> str:
    """``a → b → c``; longer chains with repeats counted, and elided in the middle."""
    if len(steps) <= 4:
        return " → ".join(steps)
    runs: list[list[Any]] = []
    for step in steps:
        if runs and runs[-1][0] == step:
            runs[-1][1] += 1
        else:
            runs.append([step, 1])
    if len(runs) == 1:
        return f"{steps[0]} → {steps[0]} → … → {steps[0]}"
    parts = [step if n == 1 else f"{step} {_TIMES}{n:,}" for step, n in runs]
    if len(parts) > 4:
        parts = [*parts[:2], "…", parts[-1]]
    return " → ".join(parts)


def _node_text(node: _Node) -> str:
    steps = node.shown if node.shown is not None else node.steps
    text = _chain_text(steps)
    details: list[str] = []
    if len(steps) > 4:
        details.append(f"{len(steps):,} steps")
    if node.count > 1:
        if len(steps) == 1:
            text = f"{text} {_TIMES}{node.count:,}"
        else:
            details.append(f"{_TIMES}{node.count:,}")
    return "\n".join([text, ", ".join(details)]) if details else text


@dataclass(slots=True)
class _Paint:
    """Colours and extra label lines for some nodes, plus a legend."""

    fill: dict[int, str]
    font: dict[int, str]
    extra: dict[int, str]
    legend: str | None


def _emit(nodes: Sequence[_Node], rankdir: str, paint: _Paint | None) -> str:
    """The DOT text: per node its function ellipse and result box, inputs first."""
    lines = [
        "digraph tarry {",
        f"  graph [rankdir={rankdir}, ranksep=0.3];",
        '  node [fontname="Helvetica,Arial,sans-serif", fontsize=12];',
        "  edge [arrowsize=0.8];",
    ]
    ids = [_dot_id("r", node.key) for node in nodes]
    for i, node in enumerate(nodes):
        text = _node_text(node)
        style = ""
        if paint is not None:
            if i in paint.extra:
                text += "\n" + paint.extra[i]
            if i in paint.fill:
                style = f', style=filled, fillcolor="{paint.fill[i]}"'
                if i in paint.font:
                    style += f', fontcolor="{paint.font[i]}"'
        many = ", peripheries=2" if node.count > 1 else ""
        bold = ", penwidth=2" if node.target else ""
        if node.literal:
            lines.append(f"  {ids[i]} [label={_dot_text(text)}, shape=box{many}{bold}{style}];")
        else:
            func = _dot_id("f", node.key)
            lines.append(f"  {func} [label={_dot_text(text)}, shape=ellipse{many}{style}];")
            lines.append(f'  {ids[i]} [label="", shape=box, width=0.3, height=0.2{many}{bold}];')
            lines.extend(f"  {ids[d]} -> {func};" for d in node.deps)
            lines.append(f"  {func} -> {ids[i]};")
    if paint is not None and paint.legend is not None:
        lines.append(f"  legend [shape=plaintext, margin=0, label=<{paint.legend}>];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- colours --------------------------------------------------------------------------

_STATUS_FILL: Final[dict[str, str]] = {
    DONE: "#a1d99b",
    "partly done": "#e5f5e0",
    FAILED: "#fb6a4a",
    NOT_RUN: "#d9d9d9",
}
# ColorBrewer YlOrRd: light is quick, dark is slow
_HEAT: Final = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
_HEAT_FONT: Final = {4: "white", 5: "white"}


def _legend(title: str, rows: Iterable[tuple[str, str]]) -> str:
    import html

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


def _paint_status(nodes: Sequence[_Node], statuses: dict[str, Status], ran: bool) -> _Paint:
    paint = _Paint({}, {}, {}, None)
    totals = {DONE: 0, FAILED: 0, NOT_RUN: 0, NOT_IN_RUN: 0}
    partly = False
    for i, node in enumerate(nodes):
        if node.literal:
            continue
        counts = {DONE: 0, FAILED: 0, NOT_RUN: 0, NOT_IN_RUN: 0}
        for key in node.keys:
            counts[statuses[key]] += 1
        for status, count in counts.items():
            totals[status] += count
        if counts[FAILED]:
            paint.fill[i] = _STATUS_FILL[FAILED]
            if len(node.keys) > 1:
                paint.extra[i] = f"{counts[FAILED]:,} failed"
        elif counts[DONE] and counts[NOT_RUN]:
            partly = True
            paint.fill[i] = _STATUS_FILL["partly done"]
            paint.extra[i] = f"{counts[DONE]:,} of {counts[DONE] + counts[NOT_RUN]:,} done"
        elif counts[DONE]:
            paint.fill[i] = _STATUS_FILL[DONE]
        elif counts[NOT_RUN]:
            paint.fill[i] = _STATUS_FILL[NOT_RUN]
    rows = [
        (_STATUS_FILL[status], f"{status} ({totals[status]:,})")
        for status in (DONE, FAILED, NOT_RUN)
        if totals[status]
    ]
    if partly:
        rows.insert(1, (_STATUS_FILL["partly done"], "partly done"))
    if totals[NOT_IN_RUN]:
        rows.append(("white", f"not in the last run ({totals[NOT_IN_RUN]:,})"))
    paint.legend = _legend("last run" if ran else "nothing computed yet", rows)
    return paint


def format_seconds(seconds: float) -> str:
    """A duration for people: 3 significant digits and a unit.

    Examples
    --------
    >>> format_seconds(0.000_012_34), format_seconds(0.5), format_seconds(75.0)
    ('12.3 µs', '500 ms', '75.0 s')
    """
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            value = seconds / scale
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f} {unit}"
    return f"{seconds * 1e9:.0f} ns"


def _paint_duration(nodes: Sequence[_Node], durations: dict[str, float]) -> _Paint:
    paint = _Paint({}, {}, {}, None)
    totals: dict[int, float] = {}
    for i, node in enumerate(nodes):
        timed = [durations[k] for k in node.keys if k in durations]
        if timed:
            totals[i] = sum(timed)
    if not totals:
        paint.legend = _legend("run time", [("white", "no timings for these tasks")])
        return paint
    low = max(min(totals.values()), 1e-9)
    high = max(max(totals.values()), low)
    ratio = high / low
    bins = len(_HEAT)
    for i, seconds in totals.items():
        if ratio <= 1.0 + 1e-9:
            b = bins // 2
        else:
            b = min(bins - 1, int(bins * math.log(max(seconds, low) / low) / math.log(ratio)))
        paint.fill[i] = _HEAT[b]
        if b in _HEAT_FONT:
            paint.font[i] = _HEAT_FONT[b]
        total = "total " if len(nodes[i].keys) > 1 else ""
        paint.extra[i] = total + format_seconds(seconds)
    if ratio <= 1.0 + 1e-9:
        rows = [(_HEAT[bins // 2], format_seconds(high))]
    else:
        edges = [low * ratio ** (b / bins) for b in range(bins + 1)]
        rows = [
            (_HEAT[b], f"{format_seconds(edges[b])} to {format_seconds(edges[b + 1])}")
            for b in range(bins)
        ]
    paint.legend = _legend("run time", rows)
    return paint


# -- public functions -----------------------------------------------------------------


def _targets(objs: tuple[Any, ...]) -> list[Task]:
    deps: dict[str, Task] = {}
    for obj in objs:
        pack(obj, deps)
    if not deps:
        raise ValueError(
            "nothing to draw: pass Delayed values, or lists, tuples, dicts, ... holding them"
        )
    return list(deps.values())


def _check_options(rankdir: str, collapse: bool | None, color: str | None) -> str:
    if not isinstance(rankdir, str) or rankdir.upper() not in _RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(_RANKDIRS)}, not {rankdir!r}")
    if collapse is not None and not isinstance(collapse, bool):
        raise TypeError(f"collapse must be True, False or None (automatic), not {collapse!r}")
    if color is not None and color not in _COLORS:
        raise ValueError(f"color must be None, 'status' or 'duration', not {color!r}")
    return rankdir.upper()


def to_dot(
    *objs: Any,
    rankdir: str = "BT",
    collapse: bool | None = None,
    optimize_graph: bool = False,
    color: str | None = None,
) -> str:
    """The task graph of ``objs`` as Graphviz DOT text; needs no Graphviz install.

    The same graph gives byte-identical text in every process: node ids
    come from task keys, and nodes and edges appear in a fixed order.

    Parameters
    ----------
    *objs
        ``Delayed`` values, or containers holding them (as for :func:`tarry.compute`).
    rankdir
        ``"BT"`` (default: inputs at the bottom, like dask), ``"TB"``, ``"LR"`` or ``"RL"``.
    collapse
        Draw tasks doing the same thing to the same kind of inputs as one node
        with a count, and long chains as one node. Default: only for graphs
        of more than 300 tasks. ``False`` draws every task.
    optimize_graph
        Draw linear chains of calls fused into one node (``inc → inc → inc``).
    color
        ``"status"``: colour tasks by their state in the last compute (done,
        failed, not run). ``"duration"``: colour them by measured run time
        (needs timings: compute inside ``with tarry.profile():``).

    Returns
    -------
    str
        DOT source, ending in a newline.

    Examples
    --------
    >>> from tarry import delayed, to_dot
    >>> inc = delayed(lambda x: x + 1, name="inc")
    >>> total = delayed(sum)([inc(i) for i in range(1000)])
    >>> [line.split("label=")[1] for line in to_dot(total).splitlines() if "ellipse" in line]
    ['"inc \u00d71,000", shape=ellipse, peripheries=2];', '"sum", shape=ellipse];']
    """
    rankdir = _check_options(rankdir, collapse, color)
    targets = _targets(objs)
    # Drawing allocates a few small containers per task and frees them all at
    # the end; cyclic GC passes over that many young objects more than double
    # the time for a big graph, and would find nothing to collect.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _to_dot(targets, rankdir, collapse, optimize_graph, color)
    finally:
        if paused:
            gc.enable()


def _to_dot(
    targets: list[Task],
    rankdir: str,
    collapse: bool | None,
    optimize_graph: bool,
    color: str | None,
) -> str:
    tasks = list(walk(targets))
    if collapse is None:
        collapse = len(tasks) > COLLAPSE_ABOVE
    nodes = _units(tasks, {t.key for t in targets}, optimize_graph)
    if collapse:
        nodes = _collapse(nodes)
    paint: _Paint | None = None
    if color == "status":
        record = last_run()
        if record is None:
            statuses: dict[str, Status] = dict.fromkeys((t.key for t in tasks), NOT_IN_RUN)
        else:
            statuses = record.statuses(tasks)
        paint = _paint_status(nodes, statuses, record is not None)
    elif color == "duration":
        record = last_run()
        durations = None if record is None else record.durations()
        if durations is None:
            raise ValueError(NO_TIMINGS_HELP)
        paint = _paint_duration(nodes, durations)
    return _emit(nodes, rankdir, paint)


def render(source: str, fmt: str) -> bytes:
    """DOT text drawn by Graphviz's ``dot`` program as ``fmt`` (png, svg or pdf) bytes.

    Uses the ``graphviz`` Python package when it is installed, else runs
    ``dot`` directly; either way a missing program raises
    :class:`GraphvizNotFoundError` with install instructions.
    """
    graphviz = _graphviz_package()
    if graphviz is None:
        # outside the except block, so a missing program is not reported
        # "during handling" of the ImportError
        return _render_with_subprocess(source, fmt)
    try:
        data: bytes = graphviz.Source(source).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizNotFoundError(INSTALL_HELP) from None
    return data


def _graphviz_package() -> Any:
    try:
        import graphviz
    except ImportError:
        return None
    return graphviz


def _render_with_subprocess(source: str, fmt: str) -> bytes:
    import shutil
    import subprocess

    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(INSTALL_HELP)
    done = subprocess.run(
        [program, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True, check=False
    )
    if done.returncode != 0:
        problem = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"Graphviz's dot program failed: {problem}")
    return done.stdout


class Picture:
    """A rendered graph, shown inline by Jupyter; used when IPython is not installed.

    Attributes
    ----------
    data
        The image: ``bytes`` for png and pdf, ``str`` for svg and dot.
    format
        One of :data:`FORMATS`.

    Examples
    --------
    >>> p = Picture("digraph {}", "dot")
    >>> p.format, p._repr_png_(), p
    ('dot', None, <tarry Picture: dot, 10 characters>)
    """

    __slots__ = ("data", "format")

    def __init__(self, data: bytes | str, format: str) -> None:
        self.data = data
        self.format = format

    def _repr_png_(self) -> bytes | None:
        return self.data if self.format == "png" and isinstance(self.data, bytes) else None

    def _repr_svg_(self) -> str | None:
        return self.data if self.format == "svg" and isinstance(self.data, str) else None

    def _repr_pdf_(self) -> bytes | None:
        return self.data if self.format == "pdf" and isinstance(self.data, bytes) else None

    def __repr__(self) -> str:
        unit = "bytes" if isinstance(self.data, bytes) else "characters"
        return f"<tarry Picture: {self.format}, {len(self.data):,} {unit}>"


def _output(filename: str | os.PathLike[str] | None, format: str | None) -> tuple[str, str | None]:
    """The format to draw and the file to write, from ``visualize``'s arguments."""
    fmt: str | None = None
    if format is not None:
        if not isinstance(format, str) or format.lower().lstrip(".") not in _SUFFIXES:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
        fmt = _SUFFIXES[format.lower().lstrip(".")]
    if filename is None:
        return fmt or "png", None
    path = os.fspath(filename)
    if not isinstance(path, str):
        raise TypeError(f"filename must be a str or path, not {type(filename).__name__}")
    suffix = os.path.splitext(path)[1]
    suffix = suffix.lower().lstrip(".")
    if fmt is not None:
        return fmt, path if suffix else f"{path}.{format}"
    if not suffix:
        return "png", f"{path}.png"
    if suffix not in _SUFFIXES:
        raise ValueError(
            f"cannot tell the picture format from {path!r}: name the file with one of "
            f".png, .svg, .pdf, .dot, or pass format="
        )
    return _SUFFIXES[suffix], path


def _shown(data: bytes, fmt: str) -> Any:
    """What Jupyter shows inline: an IPython Image or SVG when IPython is there."""
    text_like = fmt in ("svg", "dot")
    try:
        from IPython.display import SVG, Image
    except ImportError:
        return Picture(data.decode("utf-8") if text_like else data, fmt)
    if fmt == "png":
        return Image(data=data, format="png")  # type: ignore[no-untyped-call]
    if fmt == "svg":
        return SVG(data=data.decode("utf-8"))  # type: ignore[no-untyped-call]
    return Picture(data.decode("utf-8") if text_like else data, fmt)


def visualize(
    *objs: Any,
    filename: str | os.PathLike[str] | None = None,
    format: str | None = None,
    rankdir: str = "BT",
    collapse: bool | None = None,
    optimize_graph: bool = False,
    color: str | None = None,
) -> Any:
    """Draw the task graph of ``objs`` with Graphviz, and show it inline in Jupyter.

    Parameters
    ----------
    *objs
        ``Delayed`` values, or containers holding them.
    filename
        Also write the picture here. The format follows the suffix
        (``.png``, ``.svg``, ``.pdf``, ``.dot``) unless ``format`` is given;
        without a suffix, one is added.
    format
        ``"png"`` (default), ``"svg"``, ``"pdf"`` or ``"dot"`` (DOT text:
        needs no Graphviz program).
    rankdir, collapse, optimize_graph, color
        As for :func:`to_dot`.

    Returns
    -------
    IPython.display.Image or IPython.display.SVG or Picture
        Shown inline by Jupyter; a :class:`Picture` for pdf and dot, or when
        IPython is not installed.

    Raises
    ------
    GraphvizNotFoundError
        When Graphviz's ``dot`` program is needed and missing.

    Examples
    --------
    >>> from tarry import delayed, visualize
    >>> z = delayed(max)(delayed(abs)(-1), 0)
    >>> visualize(z, format="dot").data.startswith("digraph tarry {")
    True
    """
    fmt, path = _output(filename, format)
    source = to_dot(
        *objs, rankdir=rankdir, collapse=collapse, optimize_graph=optimize_graph, color=color
    )
    data = source.encode("utf-8") if fmt == "dot" else render(source, fmt)
    if path is not None:
        with open(path, "wb") as file:
            file.write(data)
    return _shown(data, fmt)


# -- Jupyter's rich repr of a Delayed ---------------------------------------------------


def html_repr(obj: Lazy) -> str:
    """HTML for Jupyter: key, number of tasks, functions used, and a small picture.

    The picture is drawn for graphs of at most 50 tasks when Graphviz's
    ``dot`` is installed. Never raises: a repr that fails hides the value.

    Examples
    --------
    >>> from tarry import delayed
    >>> text = html_repr(delayed(abs)(-1) + 1)
    >>> "3 tasks" in text or "2 tasks" in text, "abs" in text
    (True, True)
    """
    import html

    try:
        return _html(obj)
    except Exception:
        try:
            return f"<pre>{html.escape(repr(obj))}</pre>"
        except Exception:
            return "<pre>Delayed</pre>"


def _html(obj: Lazy) -> str:
    import html

    task = obj._task
    functions: dict[str, int] = {}
    values = 0
    size = 0
    for t in walk([task]):
        size += 1
        if size > _COUNT_LIMIT:
            break
        if t.func is None:
            values += 1
        else:
            label = labels(t)[0]
            functions[label] = functions.get(label, 0) + 1
    many = size > _COUNT_LIMIT
    size_text = (
        f"more than {_COUNT_LIMIT:,} tasks"
        if many
        else (f"{size:,} task" + ("" if size == 1 else "s"))
    )
    ranked = sorted(functions.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(
        f"<code>{html.escape(name)}</code>&nbsp;&times;{count:,}" for name, count in ranked[:8]
    )
    if len(ranked) > 8:
        shown += f", and {len(ranked) - 8:,} more"
    if values:
        shown += (", " if shown else "") + f"{values:,} value" + ("" if values == 1 else "s")
    if many:
        shown += " (counted in the first tasks)"
    picture = ""
    if size <= _INLINE_MAX:
        picture = _inline_svg(obj)
    return (
        '<div class="tarry-delayed">'
        f"<strong>Delayed</strong> <code>{html.escape(task.key)}</code><br>"
        f"{size_text}: {shown}"
        f"{picture}</div>"
    )


def _inline_svg(obj: Lazy) -> str:
    """The graph as an inline <svg> element, or "" when dot is missing or fails."""
    try:
        svg = render(to_dot(obj), "svg").decode("utf-8")
    except (GraphvizNotFoundError, RuntimeError, OSError):
        return ""
    start = svg.find("<svg")  # drop the XML prolog and DOCTYPE: not allowed inside HTML
    if start < 0:
        return ""
    # dot sizes the picture in points; let a wide graph shrink to the output's
    # width (the viewBox keeps its proportions) instead of scrolling sideways
    fit = '<svg style="max-width: 100%; max-height: 480px; height: auto;"'
    return f"<div>{fit}{svg[start + 4 :]}</div>"
