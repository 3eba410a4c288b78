"""The ``tarry tutorial`` command: runs every exercise, prints the table, writes pictures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tarry._cli import main

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")


def test_tutorial_runs_every_exercise_and_writes_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["tutorial", "--sleep", "0.05", "--small", "--output", str(out),
                 "--data", str(tmp_path / "data")])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0
    assert "| exercise | sequential | tarry | best possible (critical path) |" in text
    titles = ("inc/add", "for-loop of 8 incs", "for-loop with control flow", "pandas groupby",
              "pandas groupby over 10 files, on processes")  # fmt: skip
    for title in titles:
        row = next(line for line in text.splitlines() if line.startswith(f"| {title}"))
        assert row.rstrip().endswith("| yes |"), row
    assert "critical path inc → add" in text
    names = {p.name for p in out.iterdir()}
    assert {
        "inc-add-timeline.png",
        "groupby-timeline.png",
        "groupby-processes-timeline.png",
    } <= names
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "data").glob("*.csv"))[0] == "1990.csv"


def test_inc_add_takes_two_sleeps_not_three(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["tutorial", "--sleep", "0.2", "--small", "--output", str(tmp_path / "o"),
          "--data", str(tmp_path / "d")])  # fmt: skip
    row = next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("| inc/add")
    )
    cells = [c.strip() for c in row.strip("|").split("|")]
    sequential, parallel, best = (float(c.split()[0]) for c in cells[1:4])
    assert sequential >= 0.6
    assert 0.4 <= parallel < 0.55
    assert best == pytest.approx(0.4, abs=0.02)


def test_python_dash_m_and_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tarry", "tutorial", "--help"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for option in ("--scheduler", "--workers", "--sleep", "--small", "--output", "--data"):
        assert option in out.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tutorial", "--workers", "0"], "--workers must be at least 1"),
        (["tutorial", "--sleep", "-1"], "--sleep must be 0 or more"),
        (["tutorial", "--bogus"], "unrecognized arguments"),
        ([], "required"),
    ],
)
def test_bad_arguments_are_explained(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
