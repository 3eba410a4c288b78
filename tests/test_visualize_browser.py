"""Rendered pictures opened in headless Chromium: drawn (non-blank) and with their labels."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tarry import delayed

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.graphviz,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium is not installed (apt-get install -y chromium chromium-driver)",
    ),
    pytest.mark.skipif(
        shutil.which("dot") is None,
        reason="Graphviz's dot program is not installed (apt-get install -y graphviz)",
    ),
]

X = "\N{MULTIPLICATION SIGN}"


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def tutorial_z() -> Any:
    return delayed(add)(delayed(inc)(1), delayed(inc)(2))


def chromium(page: Path, tmp_path: Path, *options: str) -> bytes:
    """Run headless Chromium on ``page`` with a fresh profile; its stdout."""
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *options,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, timeout=120, check=True)
    return done.stdout


def screenshot(page: Path, tmp_path: Path) -> NDArray[np.float64]:
    """RGB pixels in [0, 1] of ``page`` as Chromium shows it in an 800x800 window."""
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    chromium(page, tmp_path, "--window-size=800,800", "--hide-scrollbars", f"--screenshot={shot}")
    pixels = np.asarray(mpimg.imread(io.BytesIO(shot.read_bytes()), format="png"))
    return pixels[..., :3].astype(np.float64)


def dom_texts(page: Path, tmp_path: Path) -> list[str]:
    """The text of every SVG <text> element in the DOM Chromium built from ``page``."""
    dom = chromium(page, tmp_path, "--dump-dom").decode("utf-8")
    return [re.sub(r"\s+", " ", t).strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", dom)]


def ink(pixels: NDArray[np.float64]) -> float:
    """Share of pixels that are clearly not background white."""
    return float((pixels.mean(axis=2) < 0.6).mean())


def test_svg_file_is_drawn_with_its_labels(tmp_path: Path) -> None:
    page = tmp_path / "z.svg"
    tutorial_z().visualize(filename=page)
    assert sorted(dom_texts(page, tmp_path)) == ["add", "inc", "inc"]
    pixels = screenshot(page, tmp_path)
    assert 0.001 < ink(pixels) < 0.5


def test_collapsed_coloured_svg_shows_counts_and_colours(tmp_path: Path) -> None:
    total = delayed(sum)([delayed(inc)(i) for i in range(1000)])
    total.compute(scheduler="sync")
    page = tmp_path / "total.svg"
    total.visualize(filename=page, color="status")
    texts = dom_texts(page, tmp_path)
    assert f"inc {X}1,000" in texts
    assert "sum" in texts
    assert "done (1,001)" in texts
    pixels = screenshot(page, tmp_path)
    assert ink(pixels) > 0.001
    done_green = np.array([0xA1, 0xD9, 0x9B]) / 255
    assert (np.abs(pixels - done_green).max(axis=2) < 0.02).mean() > 0.005


def test_html_repr_page_shows_the_inline_picture(tmp_path: Path) -> None:
    page = tmp_path / "repr.html"
    page.write_text(
        f"<!DOCTYPE html><html><meta charset='utf-8'><body>{tutorial_z()._repr_html_()}"
        "</body></html>",
        encoding="utf-8",
    )
    assert sorted(dom_texts(page, tmp_path)) == ["add", "inc", "inc"]
    assert ink(screenshot(page, tmp_path)) > 0.001
