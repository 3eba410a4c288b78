"""Progress bars: shown for long computes only, the same on every scheduler, no thread left."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time

import pytest

import tarry
from tarry._tools import observe
from tarry._tools import progress as progress_module

TOOL_THREADS = ("tarry-progress", "tarry-sampler")


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def nap_then_fail(seconds: float) -> float:
    time.sleep(seconds)
    return 1 / 0


def nap_then_interrupt(seconds: float) -> float:
    time.sleep(seconds)
    raise KeyboardInterrupt


def naps(count: int = 4, seconds: float = 0.1) -> tarry.Delayed[float]:
    """``count`` naps and their sum: ``count + 1`` tasks."""
    total: tarry.Delayed[float] = tarry.delayed(sum)(
        [tarry.delayed(nap)(seconds) for _ in range(count)]
    )
    return total


def tool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in TOOL_THREADS]


def test_bar_shows_tasks_done_and_total(scheduler: str) -> None:
    out = io.StringIO()
    with tarry.progress(min_time=0.05, file=out):
        (total,) = tarry.compute(naps(), scheduler=scheduler, num_workers=2)
    assert total == pytest.approx(0.4)
    text = out.getvalue()
    assert "5/5" in text
    assert "100%" in text
    assert "task/s" in text
    assert text.endswith("\n")  # the bar was closed
    assert tool_threads() == []


def test_short_compute_prints_nothing(scheduler: str) -> None:
    out = io.StringIO()
    with tarry.progress(min_time=0.5, file=out):
        tarry.compute(naps(2, 0.01), scheduler=scheduler)
    assert out.getvalue() == ""
    assert tool_threads() == []


def test_bar_appears_only_after_min_time() -> None:
    """The first line printed already counts some tasks done: no bar during the quiet start."""
    out = io.StringIO()
    graph = tarry.delayed(sum)([tarry.delayed(nap)(0.1) for _ in range(6)])
    with tarry.progress(min_time=0.25, file=out):
        graph.compute(scheduler="sync")
    first = out.getvalue().strip("\r").split("\r")[0]
    assert "0/7" not in first
    assert "/7" in first


def test_progress_keyword_on_every_entry_point(
    scheduler: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress_module, "DEFAULT_MIN_TIME", 0.02)
    tarry.compute(naps(4, 0.05), scheduler=scheduler, progress=True)
    assert "5/5" in capsys.readouterr().err
    naps(2, 0.05).compute(scheduler=scheduler, progress=True)
    assert "3/3" in capsys.readouterr().err
    # on a cluster persist returns at once, with nothing to show, unless told to wait
    wait = 600.0 if scheduler in ("ray", "dask") else None
    (kept,) = tarry.persist(naps(3, 0.05), scheduler=scheduler, progress=True, timeout=wait)
    assert "4/4" in capsys.readouterr().err
    assert kept.compute(scheduler=scheduler) == pytest.approx(0.15)
    naps(1, 0.05).persist(scheduler=scheduler, progress=True, timeout=wait)
    assert "2/2" in capsys.readouterr().err
    naps(1, 0.05).compute(scheduler=scheduler, progress=False)
    assert capsys.readouterr().err == ""
    assert tool_threads() == []


def test_progress_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress_module, "DEFAULT_MIN_TIME", 0.05)
    with tarry.config.set(progress=True):
        naps(2).compute()
        assert "3/3" in capsys.readouterr().err
        naps(2).compute(progress=False)  # the keyword wins
        assert capsys.readouterr().err == ""
    naps(2).compute()
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="progress must be True or False"):
        tarry.config.set(progress="yes")
    with pytest.raises(TypeError, match="progress must be True or False"):
        naps(1).compute(progress=1)  # type: ignore[arg-type]


def test_unknown_keyword_still_raises() -> None:
    with pytest.raises(TypeError):
        # call-overload once compute() has overloads (issue 16, item 11)
        tarry.compute(naps(1), progres=True)  # type: ignore[call-arg,call-overload,unused-ignore]
    with pytest.raises(TypeError):
        naps(1).compute(progres=True)  # type: ignore[call-arg]


def test_one_bar_when_block_and_keyword_both_ask(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    with tarry.progress(min_time=0.05, file=out):
        naps().compute(progress=True)
    assert "5/5" in out.getvalue()
    assert capsys.readouterr().err == ""


def nested(seconds: float) -> float:
    inner: float = tarry.delayed(nap)(seconds).compute(scheduler="sync")
    return inner


def test_compute_nested_in_a_task_gets_no_second_bar(scheduler: str) -> None:
    out = io.StringIO()
    graph = tarry.delayed(sum)([tarry.delayed(nested)(0.1) for _ in range(3)])
    with tarry.progress(min_time=0.05, file=out):
        graph.compute(scheduler=scheduler, num_workers=2)
    text = out.getvalue()
    assert text.count("\n") == 1  # one bar, closed once
    assert "4/4" in text
    assert "1/1" not in text


def test_error_stops_the_bar_and_its_thread(scheduler: str) -> None:
    out = io.StringIO()
    graph = tarry.delayed(sum)([tarry.delayed(nap_then_fail)(0.2), tarry.delayed(nap)(0.05)])
    with tarry.progress(min_time=0.05, file=out), pytest.raises(ZeroDivisionError):
        graph.compute(scheduler=scheduler)
    assert "stopped by ZeroDivisionError" in out.getvalue()
    assert tool_threads() == []
    assert observe.active == ()


@pytest.mark.parametrize("name", ["sync", "threads"])
def test_ctrl_c_leaves_no_thread_behind(name: str) -> None:
    out = io.StringIO()
    graph = tarry.delayed(sum)([tarry.delayed(nap_then_interrupt)(0.15)])
    with tarry.progress(min_time=0.05, file=out), pytest.raises(KeyboardInterrupt):
        graph.compute(scheduler=name)
    assert tool_threads() == []
    assert "stopped by KeyboardInterrupt" in out.getvalue()


def enter_and_fail() -> None:
    with tarry.progress():
        assert len(observe.active) == 1
        raise RuntimeError


def test_block_ends_even_on_error() -> None:
    with pytest.raises(RuntimeError):
        enter_and_fail()
    assert observe.active == ()


def test_import_tarry_loads_no_heavy_library() -> None:
    code = (
        "import sys, tarry; "
        "print(sorted(m for m in ('pandas', 'matplotlib', 'tqdm', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_missing_tqdm_stops_the_compute_before_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # tqdm is a required dependency, missing only after `pip install --no-deps`:
    # then the bar's thread raised after the result, and the compute ran anyway
    monkeypatch.setitem(sys.modules, "tqdm", None)
    ran: list[int] = []
    with pytest.raises(ModuleNotFoundError, match=r"progress=True needs tqdm.*pip install"):
        tarry.delayed(ran.append)(1).compute(progress=True, scheduler="sync")
    assert ran == []


NOTEBOOK_CELLS = [
    # a kernel without ipywidgets, whatever the test environment has
    "import sys\nsys.modules['ipywidgets'] = None",
    "import time, tarry\n"
    "with tarry.progress(min_time=0.05):\n"
    "    tarry.delayed(time.sleep)(0.5).compute()",
]


@pytest.mark.notebook
def test_jupyter_without_ipywidgets_shows_a_text_bar_and_no_warning() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = notebook.cells[1]["outputs"]
    assert [o for o in outputs if o["output_type"] == "error"] == []
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert "IProgress" not in text, text
    assert "TqdmWarning" not in text, text
    assert "1/1" in text  # tqdm's text bar, on stderr
