"""DOT text to an image, by Graphviz's ``dot`` program: :func:`render`.

The only module that runs Graphviz. It prefers the ``graphviz`` Python
package when installed (the ``viz`` extra) and otherwise runs ``dot``
itself, so that a machine with the program but not the package draws too.
Without the program, the error says how to install it, and that
:func:`tarry.to_dot` works without it.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["INSTALL_HELP", "GraphvizNotFoundError", "render"]

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


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is missing; the message says how to install it."""


def render(source: str, fmt: str) -> bytes:
    """DOT text drawn by Graphviz's ``dot`` program as ``fmt`` (png, svg or pdf) bytes.

    Uses the ``graphviz`` Python package when it is installed, else runs
    ``dot`` directly; either way a missing program raises
    :class:`GraphvizNotFoundError` with install instructions.

    Parameters
    ----------
    source
        DOT text, as from :func:`tarry.to_dot`.
    fmt
        A Graphviz output format: ``"png"``, ``"svg"`` or ``"pdf"``.

    Returns
    -------
    bytes
        The image file's content.

    Raises
    ------
    GraphvizNotFoundError
        When the ``dot`` program is not on the PATH.
    RuntimeError
        When ``dot`` runs and fails (its error message included).

    Examples
    --------
    >>> import shutil
    >>> png = render("digraph { a }", "png") if shutil.which("dot") else b"\\x89PNG"
    >>> png[:4]
    b'\\x89PNG'
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
    """The ``graphviz`` module, or None; imported here so `import tarry` stays light."""
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
