"""Pictures of task graphs: :func:`to_dot`, :func:`visualize` and the HTML repr of ``Delayed``.

The picture follows dask's: an ellipse per function call, a box per result,
arrows from inputs to outputs, drawn bottom to top. Three things differ:

* The DOT text is the same in every process for the same graph.
* Big graphs are collapsed: tasks doing the same thing to the same kind of
  inputs become one node with a count (``inc ×10,000``), and long chains
  become one node, so a 100,000-task graph is a picture of a few dozen
  nodes that ``dot`` lays out in well under a second.
* Without Graphviz's ``dot`` program the error says how to install it, and
  :func:`to_dot` (and ``format="dot"``) keep working: the DOT text is built
  here, with no third-party package.

How a drawing is made, one module a stage::

    Delayed values ──pack, walk──▶ tasks, inputs first
        │        labels from tarry._build.labels: "+", ".split()", "[0]", "inc"
        ▼
    collapse.py    tasks ──▶ nodes: one per task, fused chains, alike grouped
        │
        ├──────▶ color.py    nodes + last run ──▶ fill colours, time lines, legend
        ▼                                            │
    dot.py         nodes (+ colours) ──▶ DOT text ◀──┘          ══▶ to_dot()
        │
        ▼
    rendering.py   DOT text ──Graphviz dot──▶ png / svg / pdf bytes
        │
        ▼
    draw.py        format and file name; write the file         ══▶ visualize()
    jupyter.py     what a notebook shows: Picture or IPython's Image / SVG,
                   and a Delayed's summary with a small picture ══▶ html_repr()

Words, each with one meaning in this package:

* *task*: one function call or value of the graph.
* *node* (:class:`collapse.Node`): what is drawn as one thing, a function
  ellipse with its result box (a value: the box alone). A node stands for
  a task, a chain, a group, or a group of chains.
* *chain*: calls each feeding only the next, drawn as one node
  (``inc → inc → inc``); its calls are its *steps* (a lone task is one step).
* *group*: alike tasks drawn as one node with a count (``inc ×10,000``)
  and a double outline: the same steps on the same groups of inputs, or,
  past ``collapse.MAX_GROUPS`` groups, the same steps whatever the inputs.
* *shape*: an ellipse or box in the DOT text; a node is one or two shapes.

("Unit" is not one of them: it is the processes scheduler's word for tasks
run together in one worker, which pictures do not show.)

Examples
--------
A chain of 1,000 additions is one node, labelled with Python's ``+``:

>>> from tarry import delayed, to_dot
>>> value = delayed(0, name="zero")
>>> for _ in range(1000):
...     value = value + 1
>>> [line.split("label=")[1] for line in to_dot(value).splitlines() if "→" in line]
['"+ → + → … → +\\\\n1,000 steps", shape=ellipse];']
"""

from __future__ import annotations

from tarry._tools.text import format_seconds
from tarry._tools.visualize.color import NO_TIMINGS_HELP
from tarry._tools.visualize.dot import COLLAPSE_ABOVE, to_dot
from tarry._tools.visualize.draw import FORMATS, visualize
from tarry._tools.visualize.jupyter import Picture, html_repr
from tarry._tools.visualize.rendering import INSTALL_HELP, GraphvizNotFoundError, render

__all__ = [
    "COLLAPSE_ABOVE",
    "FORMATS",
    "INSTALL_HELP",
    "NO_TIMINGS_HELP",
    "GraphvizNotFoundError",
    "Picture",
    "format_seconds",
    "html_repr",
    "render",
    "to_dot",
    "visualize",
]
