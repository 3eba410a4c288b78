"""The ``tarry tutorial`` command: runs every exercise, prints the table, writes pictures."""

from __future__ import annotations

import os
import re
import signal
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
    csv = sorted(p.name for p in (tmp_path / "data" / "nycflights-small").glob("*.csv"))
    assert csv[0] == "1990.csv"


def test_inc_add_runs_both_incs_at_once_so_two_sleeps_not_three(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles: list[Profile] = []
    real_profile = tarry.profile

    def keep_profile(interval: float = 0.05) -> Profile:
        profiles.append(real_profile(interval))
        return profiles[-1]

    monkeypatch.setattr(tarry, "profile", keep_profile)
    main(["tutorial", "--sleep", "0.2", "--small", "--data", str(tmp_path / "d")])
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
    options = ("--scheduler", "--workers", "--sleep", "--small", "--output", "--data", "--notebook")
    for option in options:
        assert option in out.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tutorial", "--workers", "0"], "argument --workers: must be at least 1, not 0"),
        (["tutorial", "--workers", "two"], "argument --workers: must be a whole number"),
        (["tutorial", "--sleep", "-1"], "argument --sleep: must be 0 or more, not -1"),
        (["tutorial", "--scheduler", "bogus"], "unknown scheduler 'bogus'; choose one of: sync,"),
        (["tutorial", "--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_get_the_subcommands_usage_before_any_work(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--data", str(tmp_path / "data")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if "unrecognized" not in message:  # argparse reports those at the top level
        assert err.startswith("usage: tarry tutorial ")
    assert not (tmp_path / "data").exists()  # no data generated, no exercise run


def test_no_command_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"tarry {tarry.__version__}\n"


def test_a_missing_extra_is_named_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = main(["tutorial", "--data", str(tmp_path / "data")])
    assert code == 1
    assert capsys.readouterr().err == (
        "tarry: tarry tutorial needs matplotlib, which is not installed: "
        "pip install 'tarry[tutorial]'\n"
    )
    assert not (tmp_path / "data").exists()


def test_a_scheduler_whose_extra_is_missing_is_refused_with_the_pip_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(SystemExit):
        main(["tutorial", "--scheduler", "ray", "--data", str(tmp_path / "data")])
    assert "pip install 'tarry[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_data_goes_to_the_user_cache_and_small_keeps_apart_from_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, here = tmp_path / "cache", tmp_path / "here"
    here.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.chdir(here)
    assert main(["tutorial", "--sleep", "0", "--small", "--scheduler", "sync"]) == 0
    out = capsys.readouterr().out
    small = cache / "tarry" / "nycflights-small"
    assert f"Flight data: {small}" in out
    assert len(list(small.glob("*.csv"))) == 10
    assert not (cache / "tarry" / "nycflights").exists()  # the full data's folder: untouched
    assert list(here.iterdir()) == []  # no ./data, no ./tarry-output
    assert "Pictures: none written; add --output FOLDER" in out


def test_notebook_is_written_where_asked_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["tutorial", "--notebook"]) == 0
    written = tmp_path / "tarry-tutorial.ipynb"
    shipped = Path(__file__).parents[1] / "examples" / "tutorial.ipynb"
    assert written.read_bytes() == shipped.read_bytes()
    assert str(written) in capsys.readouterr().out
    written.write_text("my work")
    assert main(["tutorial", "--notebook", str(written)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert written.read_text() == "my work"


def test_ctrl_c_prints_interrupted_and_exits_130(tmp_path: Path) -> None:
    # each toy call sleeps 600 s: a command that ignored Ctrl-C would hang the test
    command = [sys.executable, "-m", "tarry", "tutorial", "--sleep", "600", "--small",
               "--data", str(tmp_path)]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        seen = ""
        while "sequential ..." not in seen:  # the first exercise has started
            char = process.stdout.read(1)
            assert char, f"the command ended early: {seen}"
            seen += char
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err.rstrip().endswith("\ninterrupted")
    assert "Traceback" not in err


@pytest.mark.slow
@pytest.mark.dask
def test_dask_scheduler_starts_a_local_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("distributed")
    code = main(["tutorial", "--scheduler", "dask", "--workers", "2", "--sleep", "0",
                 "--small", "--data", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "Starting a dask.distributed LocalCluster" in out
    assert "on dask, 2 workers" in out


# -- tarry cache ls | du | clear ----------------------------------------------------------


def _filled_cache(root: Path) -> Path:
    """A cache of three entries: two of `bytes` (one 100 kB), one of `str`, oldest first."""
    with tarry.cache(root):
        for lazy in (
            tarry.delayed(bytes, pure=True)(100_000),
            tarry.delayed(bytes, pure=True)(10),
            tarry.delayed(str, pure=True)(3),
        ):
            lazy.compute(scheduler="sync")  # fmt: skip
    entries = sorted((root / "entries").glob("*/*"), key=lambda p: p.stat().st_mtime)
    for age, path in enumerate(entries):  # written 30, 20 and 10 days ago, in that order
        when = path.stat().st_mtime - (3 - age) * 10 * 86400
        os.utime(path, (when, when))
    return root


def test_cache_ls_lists_entries_newest_first_from_their_headers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _filled_cache(tmp_path / "c")
    assert main(["cache", "ls", str(root)]) == 0
    lines = [_columns(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == ["function", "size", "written", "last used", "key"]
    assert [line[0] for line in lines[1:4]] == ["str", "bytes", "bytes"]
    assert lines[3][1] == "100.2 kB"
    keys = {p.name[:16] for p in (root / "entries").glob("*/*")}
    assert {line[-1] for line in lines[1:4]} == keys
    assert lines[4][1] == "3 entries"


def test_cache_du_gives_the_total_and_per_function(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _filled_cache(tmp_path / "c")
    monkeypatch.setenv("TARRY_CACHE", str(root))  # the default location
    assert main(["cache", "du"]) == 0
    lines = [_columns(line) for line in capsys.readouterr().out.splitlines()]
    assert [line[1:] for line in lines] == [
        ["2 entries", "bytes"], ["1 entry", "str"], ["3 entries", f"in all, at {root}"]
    ]  # fmt: skip


def test_cache_clear_older_than_and_max_size_and_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _filled_cache(tmp_path / "c")
    assert main(["cache", "clear", "--older-than", "25d", str(root)]) == 0
    assert capsys.readouterr().out.startswith("removed 1 entry (100.2 kB); 2 left")
    assert main(["cache", "clear", "--max-size", "300B", str(root)]) == 0
    assert capsys.readouterr().out.startswith("removed 1 entry")
    assert main(["cache", "clear", str(root)]) == 0
    assert capsys.readouterr().out.startswith("removed 1 entry")
    assert not list((root / "entries").glob("*/*"))
    with tarry.cache(root):  # still a cache
        assert tarry.delayed(str, pure=True)(5).compute(scheduler="sync") == "5"
    assert len(list((root / "entries").glob("*/*"))) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cache", "clear", "--older-than", "7y", "."], "a duration must be a number and a unit"),
        (["cache", "clear", "--max-size", "huge", "."], "--max-size must be a number of bytes"),
        (["cache", "ls"], "which cache? Give its directory or URL"),
    ],
)
def test_cache_bad_arguments_are_explained(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv("TARRY_CACHE", raising=False)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's errors
        code = int(str(exc.code))
    assert code == 2
    assert message in capsys.readouterr().err


def test_cache_clear_leaves_a_folder_that_is_no_cache_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["cache", "clear", str(tmp_path)]) == 1
    assert "holds no tarry cache" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_a_store_of_the_older_format_is_cleared_whole_by_the_command_its_error_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tarry._cache.store import CacheFormatError

    (tmp_path / "FORMAT").write_text("tarry-cache 1\n")
    (tmp_path / "entries" / "ab").mkdir(parents=True)
    (tmp_path / "entries" / "ab" / ("ab" * 20)).write_bytes(b"TARRYC\x00\x01old entry")
    with pytest.raises(CacheFormatError, match=f"tarry cache clear {tmp_path}") as caught:
        tarry.delayed(str, pure=True)(1).compute(cache=str(tmp_path))
    command = str(caught.value).split("`")[1].split()
    assert main([*command[1:-1], "--older-than", "1d", command[-1]]) == 1
    assert "clear it whole" in capsys.readouterr().err
    assert main(command[1:]) == 0
    assert tarry.delayed(str, pure=True)(1).compute(cache=str(tmp_path)) == "1"


def test_cache_command_through_python_dash_m(tmp_path: Path) -> None:
    root = _filled_cache(tmp_path / "c")
    done = subprocess.run([sys.executable, "-m", "tarry", "cache", "du", str(root)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _columns(done.stdout.splitlines()[-1])[1] == "3 entries"


def _columns(line: str) -> list[str]:
    """A line of ``tarry cache ls`` or ``du``, split where two spaces or more part columns."""
    return re.split(r"\s{2,}", line.strip())
