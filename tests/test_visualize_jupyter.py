"""What Jupyter shows (``tarry._tools.visualize.jupyter``): ``Delayed._repr_html_`` and pictures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from visualize_helpers import inc, needs_dot, tutorial_z

from tarry import delayed
from tarry._tools.visualize import html_repr
from tarry._tools.visualize.jupyter import INLINE_MAX, Picture, shown

# -- Jupyter's HTML repr ---------------------------------------------------------------------------


@needs_dot
def test_html_repr_of_a_small_graph_has_key_counts_functions_and_a_picture() -> None:
    text = tutorial_z()._repr_html_()
    assert "<code>z</code>" in text
    assert "3 tasks" in text
    assert "<code>inc</code>&nbsp;&times;2" in text
    assert "<code>add</code>&nbsp;&times;1" in text
    assert "<svg" in text
    assert "<?xml" not in text
    assert "<!DOCTYPE" not in text


def test_html_repr_of_a_larger_graph_has_no_picture() -> None:
    total = delayed(sum)([delayed(inc)(i) for i in range(INLINE_MAX)])
    text = total._repr_html_()
    assert f"{INLINE_MAX + 1} tasks" in text
    assert "<svg" not in text


def test_html_repr_without_dot_is_text_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    text = tutorial_z()._repr_html_()
    assert "3 tasks" in text
    assert "<svg" not in text


def test_html_repr_escapes_and_counts_values() -> None:
    value = delayed(1, name="<one>")
    text = html_repr(delayed(inc).options(key="<b>k</b>")(value))
    assert "&lt;b&gt;k&lt;/b&gt;" in text
    assert "<b>k" not in text
    assert "2 tasks" in text
    assert "1 value" in text


def test_html_repr_stops_counting_huge_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tarry._tools.visualize.jupyter.COUNT_LIMIT", 10)
    text = html_repr(delayed(sum)([delayed(inc)(i) for i in range(20)]))
    assert "more than 10 tasks" in text


def test_html_repr_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(obj: Any) -> str:
        raise RuntimeError("broken")

    monkeypatch.setattr("tarry._tools.visualize.jupyter._html", broken)
    z = tutorial_z()
    assert z._repr_html_() == "<pre>Delayed(&#x27;z&#x27;)</pre>"


def test_html_repr_lists_the_eight_commonest_functions_and_counts_the_rest() -> None:
    parts = [delayed(f, name=f"f{i}")(1) for i, f in enumerate([abs] * 10)]
    text = html_repr(delayed(sum)([*parts, *(delayed(abs, name="f0")(i) for i in range(3))]))
    assert text.index("<code>f0</code>&nbsp;&times;4") < text.index("<code>f1</code>")
    assert ", and 3 more" in text
    assert "<code>f9</code>" not in text


# -- pictures without IPython ---------------------------------------------------------------------


def test_a_picture_answers_only_for_its_own_format() -> None:
    png = Picture(b"\x89PNG", "png")
    svg = Picture("<svg/>", "svg")
    pdf = Picture(b"%PDF", "pdf")
    assert (png._repr_png_(), png._repr_svg_(), png._repr_pdf_()) == (b"\x89PNG", None, None)
    assert (svg._repr_png_(), svg._repr_svg_(), svg._repr_pdf_()) == (None, "<svg/>", None)
    assert (pdf._repr_png_(), pdf._repr_svg_(), pdf._repr_pdf_()) == (None, None, b"%PDF")
    assert repr(png) == "<tarry Picture: png, 4 bytes>"
    assert repr(svg) == "<tarry Picture: svg, 6 characters>"


def test_shown_gives_ipython_objects_for_png_and_svg_and_pictures_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from IPython.display import SVG, Image

    assert isinstance(shown(b"\x89PNG", "png"), Image)
    assert isinstance(shown(b"<svg/>", "svg"), SVG)
    dot: Any = shown(b"digraph {}", "dot")
    assert isinstance(dot, Picture)
    assert dot.data == "digraph {}"
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    svg: Any = shown(b"<svg/>", "svg")
    assert isinstance(svg, Picture)
    assert svg.data == "<svg/>"
    assert shown(b"%PDF", "pdf").data == b"%PDF"
