"""``tarry tutorial`` runs the groupby twice more with a cache: the second run loads it all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tarry._cli import main

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")


def test_the_second_run_loads_the_groupby_and_runs_none_of_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tutorial", "--sleep", "0", "--small", "--data", str(tmp_path / "data")]) == 0
    text = capsys.readouterr().out
    for run in ("first run, stores", "second run, loads"):
        title = f"| pandas groupby over 10 files, with a cache: {run} |"
        row = next(line for line in text.splitlines() if line.startswith(title))
        assert row.rstrip().endswith("| yes |"), row  # the result of the plain code
    first = text[text.index("## Why: pandas groupby over 10 files, with a cache: first") :]
    # each file's DataFrame and groupby (3 tasks a file) keyed but never stored
    assert re.search(r"^  cache +0 hits, 23 misses stored, 30 not cached$", first, re.M)
    second = text[text.index("## Why: pandas groupby over 10 files, with a cache: second") :]
    # explain() said so before the run, and the profile counted it after
    assert re.search(r"^cache at .*: 1 load, 0 run, 52 skip$", second, re.M)
    assert re.search(r"^  load +truediv-\w+ +stored under its key$", second, re.M)
    assert re.search(r"^  cache +1 hit \(saved .*\), 0 misses stored, 52 skipped$", second, re.M)
    assert f"cache at {tmp_path / 'data' / 'tarry-tutorial-cache-'}" in second  # beside the data
    assert list((tmp_path / "data").glob("tarry-tutorial-cache-*")) == []  # ... removed at the end
