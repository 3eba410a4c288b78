"""What Jupyter shows: the picture :func:`visualize` returns, and ``Delayed._repr_html_``.

* :func:`shown`: the object a notebook displays inline for rendered bytes:
  IPython's ``Image`` or ``SVG`` when IPython is installed, else a
  :class:`Picture`, which carries the same ``_repr_*_`` methods itself.
* :func:`html_repr`: a ``Delayed`` as the last expression of a cell: its
  key, how many tasks, which functions, and a small picture of graphs of
  at most ``INLINE_MAX`` tasks. It must never raise, and must stay quick
  for huge graphs (it stops counting at ``COUNT_LIMIT`` tasks).

IPython is imported only when a picture is shown, so ``import tarry``
does not import it.

Examples
--------
>>> shown(b"digraph {}", "dot")
<tarry Picture: dot, 10 characters>
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeAlias, Union

from tarry._build.labels import task_labels
from tarry._graph import Lazy, walk
from tarry._tools.text import counted
from tarry._tools.visualize.dot import to_dot
from tarry._tools.visualize.rendering import GraphvizNotFoundError, render

if TYPE_CHECKING:
    from IPython.display import SVG, Image

__all__ = [
    "COUNT_LIMIT",
    "FUNCTIONS_LISTED",
    "INLINE_HEIGHT_MAX",
    "INLINE_MAX",
    "Picture",
    "Shown",
    "html_repr",
    "shown",
]

#: the HTML repr draws graphs of at most this many tasks. A judgement, with
#: a measure (Graphviz 2.43, 2-core machine): 50 tasks draw in about 20 ms
#: and add about 60 kB of SVG to the saved notebook.
INLINE_MAX: Final = 50
#: the HTML repr stops counting tasks here, so displaying a huge graph stays
#: quick. Measured on a 2-core machine: counting 100,000 tasks takes about 0.1 s.
COUNT_LIMIT: Final = 100_000
#: the HTML repr names this many functions, the most used first, then says
#: how many more. A judgement: about one line of a notebook's output.
FUNCTIONS_LISTED: Final = 8
#: the inline picture is at most this many pixels high, shrunk to fit. A
#: judgement: a tall graph leaves room on screen for the cell that made it.
INLINE_HEIGHT_MAX: Final = 480
_TEXT_FORMATS: Final = ("svg", "dot")


class Picture:
    """A rendered graph, shown inline by Jupyter; used when IPython is not installed.

    Attributes
    ----------
    data
        The image: ``bytes`` for png and pdf, ``str`` for svg and dot.
    format
        One of :data:`tarry._tools.visualize.draw.FORMATS`.

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

    # Jupyter asks each _repr_*_ method in turn and shows the first answer
    # that is not None: only the one of this picture's format answers.
    def _repr_png_(self) -> bytes | None:
        return self.data if self.format == "png" and isinstance(self.data, bytes) else None

    def _repr_svg_(self) -> str | None:
        return self.data if self.format == "svg" and isinstance(self.data, str) else None

    def _repr_pdf_(self) -> bytes | None:
        return self.data if self.format == "pdf" and isinstance(self.data, bytes) else None

    def __repr__(self) -> str:
        counted_in = "bytes" if isinstance(self.data, bytes) else "characters"
        return f"<tarry Picture: {self.format}, {len(self.data):,} {counted_in}>"


#: what :func:`shown` (so :func:`tarry.visualize`) returns; each has ``.data``
# strings: IPython is optional, imported for type checkers only
Shown: TypeAlias = Union["Image", "SVG", "Picture"]


def shown(data: bytes, fmt: str) -> Shown:
    """What Jupyter shows inline: an IPython Image or SVG when IPython is there.

    Parameters
    ----------
    data
        The rendered file's content (DOT text as UTF-8 for ``"dot"``).
    fmt
        ``"png"``, ``"svg"``, ``"pdf"`` or ``"dot"``.

    Returns
    -------
    IPython.display.Image or IPython.display.SVG or Picture
        A :class:`Picture` for pdf and dot, or when IPython is not installed;
        svg and dot as text, png and pdf as bytes.

    Examples
    --------
    >>> shown(b"%PDF-1.7", "pdf")
    <tarry Picture: pdf, 8 bytes>
    """
    try:
        from IPython.display import SVG, Image
    except ImportError:
        pass
    else:
        if fmt == "png":
            return Image(data=data, format="png")  # type: ignore[no-untyped-call]
        if fmt == "svg":
            return SVG(data=data.decode("utf-8"))  # type: ignore[no-untyped-call]
    return Picture(data.decode("utf-8") if fmt in _TEXT_FORMATS else data, fmt)


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
    import html  # here, not at the top: `import tarry` stays free of it

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
        if size > COUNT_LIMIT:
            break
        if t.func is None:
            values += 1
        else:
            label = task_labels(t)[0]
            functions[label] = functions.get(label, 0) + 1
    many = size > COUNT_LIMIT
    size_text = f"more than {COUNT_LIMIT:,} tasks" if many else counted(size, "task")
    ranked = sorted(functions.items(), key=lambda item: (-item[1], item[0]))
    listed = ", ".join(
        f"<code>{html.escape(name)}</code>&nbsp;&times;{count:,}"
        for name, count in ranked[:FUNCTIONS_LISTED]
    )
    if len(ranked) > FUNCTIONS_LISTED:
        listed += f", and {len(ranked) - FUNCTIONS_LISTED:,} more"
    if values:
        listed += (", " if listed else "") + counted(values, "value")
    if many:
        listed += " (counted in the first tasks)"
    picture = _inline_svg(obj) if size <= INLINE_MAX else ""
    return (
        '<div class="tarry-delayed">'
        f"<strong>Delayed</strong> <code>{html.escape(task.key)}</code><br>"
        f"{size_text}: {listed}"
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
    fit = f'<svg style="max-width: 100%; max-height: {INLINE_HEIGHT_MAX}px; height: auto;"'
    return f"<div>{fit}{svg[start + 4 :]}</div>"
