"""The ``tarry tutorial`` command: runs every exercise, prints the table, writes pictures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tarry
from tarry._cli import main
from tarry._tools.profile import Profile

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


def test_inc_add_runs_both_incs_at_once_so_two_sleeps_not_three(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles: list[Profile] = []
    real_profile = tarry.profile

    def keep_profile(interval: float = 0.05) -> Profile:
        profiles.append(real_profile(interval))
        return profiles[-1]

    monkeypatch.setattr(tarry, "profile", keep_profile)
    main(["tutorial", "--sleep", "0.2", "--small", "--output", str(tmp_path / "o"),
          "--data", str(tmp_path / "d")])  # fmt: skip
    row = next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("| inc/add")
    )
    cells = [c.strip() for c in row.strip("|").split("|")]
    sequential, parallel, best = (float(c.split()[0]) for c in cells[1:4])
    assert sequential >= 0.6  # three sleeps, one after another
    assert parallel >= 0.4  # two sleeps: inc, then add
    # the tasks as they ran, timed in the workers: both incs at once, then add
    events = next(p.events for p in profiles if {e.name for e in p.events} == {"inc", "add"})
    first, second = (e for e in events if e.name == "inc")
    (last,) = (e for e in events if e.name == "add")
    assert first.start < second.end  # they overlap
    assert second.start < first.end
    assert last.start >= max(first.end, second.end)
    # best possible: the critical path inc → add, not the sum of the three tasks
    chain = max(first.end - first.start, second.end - second.start) + last.end - last.start
    assert best == pytest.approx(chain, abs=0.006)  # printed to 0.01 s


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
