"""The picture of a task graph: :func:`visualize` (and ``Delayed.visualize``).

One call from values to a picture: the format and file from ``filename=``
and ``format=`` (:func:`output`), the DOT text (:mod:`.dot`), the image
(:mod:`.rendering`, skipped for ``"dot"``, which needs no Graphviz), the
file, and the object Jupyter shows (:mod:`.jupyter`).

As in dask, the picture is also written to ``mydask.png`` in the current
folder unless ``filename=`` says otherwise: a script that calls
``visualize()`` gets a file to open, and ``filename=None`` writes none.

Examples
--------
>>> output("graph.svg", None), output("graph", None), output(None, "pdf")
(('svg', 'graph.svg'), ('png', 'graph.png'), ('pdf', None))
"""

from __future__ import annotations

import os
from typing import Any, Final

from tarry._tools.visualize.dot import to_dot
from tarry._tools.visualize.jupyter import Shown, shown
from tarry._tools.visualize.rendering import render

__all__ = ["DEFAULT_FILENAME", "FORMATS", "output", "visualize"]

#: the file :func:`visualize` writes when not told otherwise: dask's default
#: (``dask.visualize(filename="mydask")``), so a dask user finds it where
#: they look; the suffix follows the format
DEFAULT_FILENAME: Final = "mydask"

#: output formats :func:`visualize` writes; "dot" needs no Graphviz program
FORMATS: Final = ("png", "svg", "pdf", "dot")
# file suffix (or format=) -> format drawn; ".gv" is Graphviz's other suffix for DOT
_SUFFIXES: Final = {"png": "png", "svg": "svg", "pdf": "pdf", "dot": "dot", "gv": "dot"}


def visualize(
    *objs: Any,
    filename: str | os.PathLike[str] | None = DEFAULT_FILENAME,
    format: str | None = None,
    rankdir: str = "BT",
    collapse: bool | None = None,
    optimize_graph: bool = False,
    color: str | None = None,
    cache: str | os.PathLike[str] | bool | None = None,
) -> Shown:
    """Draw the task graph of ``objs`` with Graphviz, and show it inline in Jupyter.

    Parameters
    ----------
    *objs
        ``Delayed`` values, or containers holding them.
    filename
        Also write the picture to this file: by default ``mydask.png`` in the
        current folder, as dask does (``mydask.svg`` with ``format="svg"``);
        ``None`` writes no file. The format follows the suffix (``.png``,
        ``.svg``, ``.pdf``, ``.dot``) unless ``format`` is given; without a
        suffix, one is added.
    format
        ``"png"`` (default), ``"svg"``, ``"pdf"`` or ``"dot"`` (DOT text:
        needs no Graphviz program).
    rankdir, collapse, optimize_graph, color, cache
        As for :func:`to_dot`; ``color="cache"`` shows what a compute with
        the cache would load and run, and why (hover a node of an SVG).

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
    >>> visualize(z, format="dot", filename=None).data.startswith("digraph tarry {")
    True
    """
    fmt, path = output(filename, format)
    source = to_dot(
        *objs,
        rankdir=rankdir,
        collapse=collapse,
        optimize_graph=optimize_graph,
        color=color,
        cache=cache,
    )
    data = source.encode("utf-8") if fmt == "dot" else render(source, fmt)
    if path is not None:
        with open(path, "wb") as file:
            file.write(data)
    return shown(data, fmt)


def output(filename: str | os.PathLike[str] | None, format: str | None) -> tuple[str, str | None]:
    """The format to draw and the file to write, from ``visualize``'s arguments.

    ``format=`` wins over the suffix; a name without a suffix gets one.

    Examples
    --------
    >>> output("graph.png", "svg"), output("graph", "pdf"), output("graph.gv", None)
    (('svg', 'graph.png'), ('pdf', 'graph.pdf'), ('dot', 'graph.gv'))
    >>> output("graph", ".PDF")  # a suffix given with its dot gets no second one
    ('pdf', 'graph.pdf')
    """
    fmt: str | None = None
    if format is not None:
        fmt = _SUFFIXES.get(format.lower().lstrip(".")) if isinstance(format, str) else None
        if fmt is None:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if filename is None:
        return fmt or "png", None
    path = os.fspath(filename)
    if not isinstance(path, str):
        raise TypeError(f"filename must be a str or path, not {type(filename).__name__}")
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt is not None and format is not None:
        return fmt, path if suffix else f"{path}.{format.lower().lstrip('.')}"
    if not suffix:
        return "png", f"{path}.png"
    if suffix not in _SUFFIXES:
        raise ValueError(
            f"cannot tell the picture format from {path!r}: name the file with one of "
            f".png, .svg, .pdf, .dot, or pass format="
        )
    return _SUFFIXES[suffix], path
