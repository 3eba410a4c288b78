"""Rendering with Graphviz (``rendering.py``); what ``visualize`` writes, returns (``draw.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from visualize_helpers import X, gray, inc, needs_dot, png_shows, tutorial_z

from tarry import delayed, to_dot, visualize
from tarry._tools.visualize import GraphvizNotFoundError, Picture
from tarry._tools.visualize.draw import output
from tarry._tools.visualize.rendering import render


@pytest.fixture(autouse=True)
def in_tmp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """visualize() writes mydask.png to the current folder by default: not into the repo."""
    monkeypatch.chdir(tmp_path)


# -- rendering -------------------------------------------------------------------------------


@needs_dot
def test_png_is_a_valid_image_showing_the_labels(tmp_path: Path) -> None:
    picture = tutorial_z().visualize(filename=tmp_path / "z.png")
    data = (tmp_path / "z.png").read_bytes()
    assert data == picture.data
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = gray(data)
    assert pixels.shape[0] > 100
    assert pixels.shape[1] > 100
    assert 0.005 < (pixels < 0.5).mean() < 0.5  # drawn on, but mostly background
    assert png_shows(data, "inc")
    assert png_shows(data, "add")
    assert not png_shows(data, "sum")


@needs_dot
def test_png_of_a_collapsed_graph_shows_counts() -> None:
    total = delayed(sum)([delayed(inc)(i) for i in range(1000)])
    data = visualize(total, filename=None).data
    assert isinstance(data, bytes)
    assert png_shows(data, f"inc {X}1,000")
    assert png_shows(data, "sum")


@needs_dot
def test_svg_is_valid_xml_with_the_labels(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    picture = tutorial_z().visualize(filename=str(tmp_path / "z.svg"))
    root = ET.fromstring((tmp_path / "z.svg").read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert sorted(texts) == ["add", "inc", "inc"]
    from IPython.display import SVG

    assert isinstance(picture, SVG)
    assert "<svg" in picture.data


@needs_dot
def test_pdf_format(tmp_path: Path) -> None:
    picture = visualize(tutorial_z(), filename=tmp_path / "z", format="pdf")
    assert (tmp_path / "z.pdf").read_bytes().startswith(b"%PDF")
    assert isinstance(picture, Picture)
    assert picture._repr_pdf_() == picture.data


@needs_dot
def test_png_is_returned_as_an_ipython_image() -> None:
    from IPython.display import Image

    picture = tutorial_z().visualize()
    assert isinstance(picture, Image)
    assert picture.data.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("filename", "fmt", "written", "kind"),
    [
        ("g.svg", None, "g.svg", "svg"),
        ("g.SVG", None, "g.SVG", "svg"),
        ("g", None, "g.png", "png"),
        ("g.png", "svg", "g.png", "svg"),
        ("g", "pdf", "g.pdf", "pdf"),
        ("g.gv", None, "g.gv", "dot"),
    ],
)
def test_the_format_follows_the_suffix_unless_format_says_otherwise(
    filename: str, fmt: str | None, written: str, kind: str
) -> None:
    assert output(filename, fmt) == (kind, written)


def test_unknown_suffix_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf, \.dot"):
        output("g.jpeg", None)
    with pytest.raises(ValueError, match="format must be one of"):
        output(None, "jpeg")


def test_dot_format_needs_no_graphviz_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    picture = tutorial_z().visualize(filename=tmp_path / "z.dot")
    assert (tmp_path / "z.dot").read_text() == to_dot(tutorial_z()) == picture.data
    assert repr(picture).startswith("<tarry Picture: dot")


@pytest.mark.parametrize("python_package", [True, False], ids=["graphviz-package", "subprocess"])
def test_missing_dot_program_explains_how_to_install_it(
    python_package: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    if not python_package:
        monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(GraphvizNotFoundError) as caught:
        tutorial_z().visualize()
    message = str(caught.value)
    assert "sudo apt-get install graphviz" in message
    assert "conda install -c conda-forge graphviz" in message
    assert "brew install graphviz" in message
    assert "tarry.to_dot(" in message
    error = caught.value  # one short message: no chained traceback to read through
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert to_dot(tutorial_z()).startswith("digraph")  # still works


@needs_dot
def test_subprocess_path_renders_the_same_svg_as_the_graphviz_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = to_dot(tutorial_z())
    with_package = render(source, "svg")
    monkeypatch.setitem(sys.modules, "graphviz", None)
    assert render(source, "svg") == with_package


@needs_dot
def test_without_ipython_a_picture_object_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    png = tutorial_z().visualize()
    svg = tutorial_z().visualize(format="svg")
    assert isinstance(png, Picture)
    assert isinstance(svg, Picture)
    assert png._repr_png_() is not None
    assert png._repr_png_() == png.data
    assert png._repr_svg_() is None
    assert "<svg" in (svg._repr_svg_() or "")


@needs_dot
@pytest.mark.parametrize("color", [None, "status"])
@pytest.mark.parametrize("collapse", [False, True])
@pytest.mark.parametrize("optimize", [False, True])
def test_every_kind_of_drawing_is_accepted_by_dot(
    color: str | None, collapse: bool, optimize: bool
) -> None:
    x = delayed([1, 2, 3], name="x")
    parts = [x[i] + i for i in range(3)] + [x.count(1), -abs(x[0]), delayed(3 + 4j).real]
    total = delayed(sum)(parts) * delayed(inc)(delayed(inc)(2))
    total.compute(scheduler="sync")
    source = to_dot(total, collapse=collapse, optimize_graph=optimize, color=color)
    svg = render(source, "svg").decode()
    assert "<svg" in svg
    assert "sum" in svg


# -- pieces on their own ------------------------------------------------------------------------


def test_format_names_are_case_insensitive_and_paths_may_be_path_objects() -> None:
    assert output(None, None) == ("png", None)
    assert output(None, "SVG") == ("svg", None)
    assert output(None, ".gv") == ("dot", None)
    assert output(Path("out") / "g.PDF", None) == ("pdf", str(Path("out") / "g.PDF"))


def test_a_filename_that_is_not_text_is_refused() -> None:
    with pytest.raises(TypeError, match="filename must be a str or path"):
        output(b"g.png", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format must be one of png, svg, pdf, dot"):
        output("g.png", 3)  # type: ignore[arg-type]


@needs_dot
def test_dot_failing_on_bad_text_says_what_dot_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # the subprocess path
    with pytest.raises(RuntimeError, match=r"Graphviz's dot program failed: .*syntax error"):
        render("digraph { a -> }", "svg")


# -- the default file, as in dask ------------------------------------------------------------


@needs_dot
def test_without_a_filename_the_picture_goes_to_mydask_png_as_in_dask(tmp_path: Path) -> None:
    # dask.visualize(filename="mydask") writes mydask.png; a script that calls
    # visualize() to look at the graph got nothing before
    picture = visualize(tutorial_z())
    assert (tmp_path / "mydask.png").read_bytes() == picture.data
    visualize(tutorial_z(), format="svg")
    assert (tmp_path / "mydask.svg").read_text().rstrip().endswith("</svg>")
    (tmp_path / "mydask.png").unlink()
    visualize(tutorial_z(), filename=None)  # None: no file, as in dask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydask.svg"]


@needs_dot
def test_delayed_visualize_without_a_filename_writes_mydask_png(tmp_path: Path) -> None:
    picture = tutorial_z().visualize()
    assert (tmp_path / "mydask.png").read_bytes() == picture.data
