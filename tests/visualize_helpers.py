"""What the ``test_visualize*.py`` files share: example graphs, and readers of DOT text and PNGs."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from numpy.typing import NDArray

from tarry import Delayed, delayed
from tarry._tools.visualize.rendering import render

HAVE_DOT = shutil.which("dot") is not None
X = "\N{MULTIPLICATION SIGN}"  # counts are drawn as "inc", the sign, "10,000"
F = TypeVar("F", bound=Callable[..., Any])


def needs_dot(test: F) -> F:
    """Mark a test that runs Graphviz's dot program; skipped where it is missing."""
    skip = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")
    marked: F = pytest.mark.graphviz(skip(test))
    return marked


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def boom(x: int) -> int:
    raise ValueError("boom")


def tutorial_z() -> Delayed[int]:
    """The tutorial's ``z = add(inc(1), inc(2))``, with fixed keys."""
    x = delayed(inc).options(key="x")(1)
    y = delayed(inc).options(key="y")(2)
    return delayed(add).options(key="z")(x, y)


def tutorial_results() -> list[Delayed[int]]:
    return [delayed(inc).options(key=f"inc-{i}")(i) for i in range(1, 9)]


def tree_sum(n: int) -> Delayed[int]:
    """``n`` inc tasks summed by a pairwise tree of add tasks (2n - 1 tasks)."""
    level = [delayed(inc)(i) for i in range(n)]
    while len(level) > 1:
        level = [
            delayed(add)(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    result: Delayed[int] = level[0]
    return result


def canonical(dot: str) -> str:
    """DOT text with tarry-generated keys renamed ``name-1``, ``name-2``, ... by first use."""
    names: dict[str, str] = {}
    counts: dict[str, int] = {}

    def rename(match: re.Match[str]) -> str:
        key, name = match.group(0), match.group(1)
        if key not in names:
            counts[name] = counts.get(name, 0) + 1
            names[key] = f"{name}-{counts[name]}"
        return names[key]

    return re.sub(r"([A-Za-z_]+)-[0-9a-f]{10,}", rename, dot)


def labels_in(dot: str) -> list[str]:
    """Labels of function ellipses and value boxes (not of the empty result boxes), in order."""
    return re.findall(r'\[label="((?:[^"\\]|\\.)+)"', dot)


def shape_lines(dot: str, shape: str) -> list[str]:
    """The DOT lines drawing a ``shape`` ("ellipse", "box"), in order."""
    return [line for line in dot.splitlines() if f"shape={shape}" in line]


def gray(png: bytes) -> NDArray[np.float64]:
    """A PNG decoded to gray levels in [0, 1]."""
    import matplotlib.image as mpimg

    pixels = np.asarray(mpimg.imread(io.BytesIO(png), format="png"), dtype=np.float64)
    return pixels[..., :3].mean(axis=2) if pixels.ndim == 3 else pixels


def rendered_word(text: str) -> NDArray[np.float64]:
    """``text`` drawn by dot in the node font, cropped to its ink."""
    source = (
        'digraph { node [fontname="Helvetica,Arial,sans-serif", fontsize=12, shape=plaintext]; '
        f'a [label="{text}"]; }}'
    )
    word = gray(render(source, "png"))
    rows, cols = np.where(word < 0.5)
    return word[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def png_shows(png: bytes, text: str) -> bool:
    """True when ``text``, as dot draws it, appears pixel for pixel in the picture."""
    from numpy.lib.stride_tricks import sliding_window_view

    picture, word = gray(png), rendered_word(text)
    if word.shape[0] > picture.shape[0] or word.shape[1] > picture.shape[1]:
        return False
    windows = sliding_window_view(picture, word.shape)
    return bool(np.abs(windows - word).mean(axis=(2, 3)).min() < 0.02)
