"""The DOT text of a task graph: :func:`to_dot`.

The picture follows dask's: an ellipse per function call, a box per result,
arrows from inputs to outputs, drawn bottom to top. The text is the same
in every process for the same graph: DOT ids are the task keys themselves
(hashed only when a key is long or has characters DOT cannot carry), never
``hash()``, and everything is emitted in walk order. It is built here with no
third-party package, so it works without Graphviz installed.

Examples
--------
>>> from tarry import delayed
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
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from tarry._cache.explain import CachePlan, plan
from tarry._cache.switch import store_for
from tarry._compute import pack_targets
from tarry._graph import Task, walk
from tarry._tools.text import TIMES, format_chain
from tarry._tools.visualize.collapse import Node, collapsed, task_nodes
from tarry._tools.visualize.color import COLORS, Paint, paint

if TYPE_CHECKING:
    from os import PathLike

__all__ = [
    "COLLAPSE_ABOVE",
    "DIGEST_BYTES",
    "PLAIN_KEY_MAX",
    "RANKDIRS",
    "STEPS_WRITTEN_OUT",
    "dot_id",
    "dot_text",
    "emit",
    "node_text",
    "to_dot",
]

#: graphs with more tasks than this are collapsed unless ``collapse=`` says otherwise.
#: Measured (Graphviz 2.43): about the most tasks side by side that a PNG
#: shows at full size (at 350, ``dot`` shrinks the picture to fit cairo's
#: bitmap limit), and 300 tasks of any shape tried (fan-in, tree, chain,
#: random) are laid out in a second or less on a 2-core machine.
COLLAPSE_ABOVE: Final = 300
#: the values of ``rankdir=`` (in upper case)
RANKDIRS: Final = ("BT", "TB", "LR", "RL")
#: a label writes out chains of up to this many steps; longer ones are
#: shortened, so the label adds how many steps there are. The value is
#: :func:`tarry._tools.text.format_chain`'s (checked by a test).
STEPS_WRITTEN_OUT: Final = 4
#: keys longer than this are hashed for their DOT ids. A judgement: the
#: keys tarry makes (a name, ``-`` and up to 32 hex digits) stay readable
#: in the DOT text, and a long key (a path, a repr) does not lengthen lines.
PLAIN_KEY_MAX: Final = 80
#: bytes of the hash that stands for a key in a DOT id (20 hex digits): by
#: the birthday bound, two hashed keys of one graph are likely to meet by
#: chance only from about 10**12 of them on.
DIGEST_BYTES: Final = 10
# Keys made only of these characters, and short enough, are used as DOT ids as they are.
_PLAIN_KEY: Final = re.compile(
    r"[A-Za-z0-9_.,:;/@+=()\[\]{}<>!?$%&*'~^| -]" + f"{{1,{PLAIN_KEY_MAX}}}"
)


def to_dot(
    *objs: Any,
    rankdir: str = "BT",
    collapse: bool | None = None,
    optimize_graph: bool = False,
    color: str | None = None,
    cache: str | PathLike[str] | bool | None = None,
) -> str:
    """The task graph of ``objs`` as Graphviz DOT text; needs no Graphviz install.

    The same graph gives byte-identical text in every process: DOT ids
    come from task keys, and shapes and edges appear in a fixed order.

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
        ``"order"``: by their place in the graph's order. ``"cache"``: by
        what a compute with ``cache`` would do (load, run as new, run as
        invalidated by an edit, not cacheable, skip), each node's tooltip
        saying why; a dry run, as :func:`tarry.explain`: nothing is loaded
        or run.
    cache
        For ``color="cache"``: the cache's directory or URL (default: the
        one :func:`tarry.cache` turned on).

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
    dry_run = _cache_plan(targets, cache) if color == "cache" else None
    if dry_run is None and cache is not None:
        raise ValueError(
            "cache= tells color='cache' which cache to look in; pass color='cache' as well"
        )
    # Drawing allocates a few small containers per task and frees them all at
    # the end; cyclic GC passes over that many young objects more than double
    # the time for a big graph, and would find nothing to collect.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _to_dot(targets, rankdir, collapse, optimize_graph, color, dry_run)
    finally:
        if paused:
            gc.enable()


def _to_dot(
    targets: list[Task],
    rankdir: str,
    collapse: bool | None,
    optimize_graph: bool,
    color: str | None,
    dry_run: CachePlan | None,
) -> str:
    tasks = list(walk(targets))
    if collapse is None:
        collapse = len(tasks) > COLLAPSE_ABOVE
    nodes = task_nodes(tasks, {t.key for t in targets}, optimize_graph)
    if collapse:
        nodes = collapsed(nodes)
    return emit(nodes, rankdir, paint(color, nodes, tasks, dry_run))


def _cache_plan(targets: list[Task], cache: str | PathLike[str] | bool | None) -> CachePlan:
    """What a compute of ``targets`` with ``cache`` (or the one set) would do."""
    store = store_for(cache, create=False)
    if store is None:
        raise ValueError(
            "color='cache' needs a cache: pass cache='folder or URL', or turn one on "
            "with tarry.cache(...) or tarry.config.set(cache=...)"
        )
    return plan(targets, store)


def _targets(objs: tuple[Any, ...]) -> list[Task]:
    """The tasks of the ``Delayed`` values in ``objs`` (and in containers among them)."""
    _, targets = pack_targets(objs)
    if not targets:
        raise ValueError(
            "nothing to draw: pass Delayed values, or lists, tuples, dicts, ... holding them"
        )
    return targets


def _check_options(rankdir: str, collapse: bool | None, color: str | None) -> str:
    """Refuse bad options before any work; returns ``rankdir`` in upper case."""
    if not isinstance(rankdir, str) or rankdir.upper() not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    if collapse is not None and not isinstance(collapse, bool):
        raise TypeError(f"collapse must be True, False or None (automatic), not {collapse!r}")
    if color is not None and color not in COLORS:
        choices = ", ".join(map(repr, COLORS))
        raise ValueError(f"color must be None or one of {choices}, not {color!r}")
    return rankdir.upper()


def emit(nodes: Sequence[Node], rankdir: str, painted: Paint | None) -> str:
    """The DOT text: per node its function ellipse and result box, inputs first.

    A value (literal node) is drawn as its box alone. Groups of several
    alike tasks get a double outline, requested outputs a bold box.

    Examples
    --------
    >>> value = Node("v", ["1"], ["1"], True, ["v"], [])
    >>> call = Node("c", ["inc"], ["inc"], False, ["c"], [0], target=True)
    >>> print(emit([value, call], "LR", None), end="")
    digraph tarry {
      graph [rankdir=LR, ranksep=0.3];
      node [fontname="Helvetica,Arial,sans-serif", fontsize=12];
      edge [arrowsize=0.8];
      "r:v" [label="1", shape=box];
      "f:c" [label="inc", shape=ellipse];
      "r:c" [label="", shape=box, width=0.3, height=0.2, penwidth=2];
      "r:v" -> "f:c";
      "f:c" -> "r:c";
    }
    """
    lines = [
        "digraph tarry {",
        f"  graph [rankdir={rankdir}, ranksep=0.3];",
        '  node [fontname="Helvetica,Arial,sans-serif", fontsize=12];',
        "  edge [arrowsize=0.8];",
    ]
    ids = [dot_id("r", node.key) for node in nodes]
    for i, node in enumerate(nodes):
        text = node_text(node)
        style = ""
        if painted is not None:
            if i in painted.extra:
                text += "\n" + painted.extra[i]
            if i in painted.fill:
                style = f', style=filled, fillcolor="{painted.fill[i]}"'
                if i in painted.font:
                    style += f', fontcolor="{painted.font[i]}"'
            if i in painted.tooltip:
                style += f", tooltip={dot_text(painted.tooltip[i])}"
        many = ", peripheries=2" if node.count > 1 else ""
        bold = ", penwidth=2" if node.target else ""
        if node.literal:
            lines.append(f"  {ids[i]} [label={dot_text(text)}, shape=box{many}{bold}{style}];")
        else:
            func = dot_id("f", node.key)
            lines.append(f"  {func} [label={dot_text(text)}, shape=ellipse{many}{style}];")
            lines.append(f'  {ids[i]} [label="", shape=box, width=0.3, height=0.2{many}{bold}];')
            lines.extend(f"  {ids[d]} -> {func};" for d in node.deps)
            lines.append(f"  {func} -> {ids[i]};")
    if painted is not None and painted.legend is not None:
        lines.append(f"  legend [shape=plaintext, margin=0, label=<{painted.legend}>];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_id(prefix: str, key: str) -> str:
    """The quoted DOT id of a node's ellipse (``f``) or box (``r``): ``prefix:key``, or a hash.

    The key is hashed when it is longer than ``PLAIN_KEY_MAX`` or has
    characters DOT cannot carry.

    Examples
    --------
    >>> dot_id("f", "inc-1"), dot_id("r", 'a "quoted" key')
    ('"f:inc-1"', '"r#47bfd180a66f72257fce"')
    """
    if _PLAIN_KEY.fullmatch(key):
        return f'"{prefix}:{key}"'
    # '#' never occurs in a plain key, so hashed ids cannot meet plain ones
    digest = hashlib.blake2b(
        key.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES
    ).hexdigest()
    return f'"{prefix}#{digest}"'


def dot_text(text: str) -> str:
    """A DOT double-quoted label: backslashes and quotes escaped, newlines as line breaks.

    Examples
    --------
    >>> print(dot_text('say "hi"\\nback\\\\slash'))
    "say \\"hi\\"\\nback\\\\slash"
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def node_text(node: Node) -> str:
    """A node's label: its steps, then a second line with the step count and group size.

    Examples
    --------
    >>> node_text(Node("k", ["inc"], ["inc"], False, ["a", "b"], [], count=2))
    'inc ×2'
    >>> print(node_text(Node("k", ["+"] * 6, None, False, ["a"] * 12, [], count=2)))
    + → + → … → +
    6 steps, ×2
    """
    steps = node.shown if node.shown is not None else node.steps
    text = format_chain(steps)
    details: list[str] = []
    if len(steps) > STEPS_WRITTEN_OUT:  # format_chain shortens these: say how long
        details.append(f"{len(steps):,} steps")
    if node.count > 1:
        if len(steps) == 1:
            text = f"{text} {TIMES}{node.count:,}"
        else:
            details.append(f"{TIMES}{node.count:,}")
    return "\n".join([text, ", ".join(details)]) if details else text
