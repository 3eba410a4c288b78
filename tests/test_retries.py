"""retries=, retry_on=: a failed task runs again, on every scheduler alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from remote_helpers import fail_first, inc

from tarry import annotate, compute, delayed, profile
from tarry._tools.last_run import last_run


def test_a_flaky_task_succeeds_within_its_retries(scheduler: str, tmp_path: Path) -> None:
    flaky = delayed(fail_first).options(retries=2, retry_on=ConnectionError)
    out = delayed(inc)(flaky(str(tmp_path), 2, ConnectionError))
    assert compute(out, scheduler=scheduler) == (4,)
    assert len(list(tmp_path.iterdir())) == 3


def test_exceptions_not_named_fail_at_once(scheduler: str, tmp_path: Path) -> None:
    flaky = delayed(fail_first).options(retries=3, retry_on=ConnectionError)
    with pytest.raises(ValueError, match="attempt 1"):
        compute(flaky(str(tmp_path), 5, ValueError), scheduler=scheduler)
    assert len(list(tmp_path.iterdir())) == 1


def test_exhausted_retries_raise_the_last_attempts_error(scheduler: str, tmp_path: Path) -> None:
    with pytest.raises(OSError, match="attempt 2"):
        compute(delayed(fail_first)(str(tmp_path), 5, OSError), scheduler=scheduler, retries=1)
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("where", ["compute", "annotate"])
def test_retries_for_every_task_from_compute_or_an_annotate_block(
    where: str, tmp_path: Path
) -> None:
    if where == "annotate":
        with annotate(retries=1):
            flaky = delayed(fail_first)(str(tmp_path), 1, OSError)
        got = compute(flaky, scheduler="threads")
    else:
        got = compute(
            delayed(fail_first)(str(tmp_path), 1, OSError), scheduler="threads", retries=1
        )
    assert got == (2,)


def test_last_run_counts_the_attempts_of_each_task(tmp_path: Path) -> None:
    flaky = delayed(fail_first)(str(tmp_path), 2, OSError)
    compute(flaky, scheduler="sync", retries=2)
    record = last_run()
    assert record is not None
    assert record.attempts == {flaky.key: 3}


def test_the_profile_and_its_report_show_the_attempts_of_retried_tasks(
    scheduler: str, tmp_path: Path
) -> None:
    pytest.importorskip("pandas")
    if scheduler == "ray":
        pytest.skip("Ray retries a task itself and does not say how often")
    flaky = delayed(fail_first)(str(tmp_path), 2, OSError)
    steady = delayed(inc)(flaky)
    with profile() as p:
        compute(steady, scheduler=scheduler, retries=2)
    report = p.report()
    assert report.attempts == {flaky.key: 3}
    assert f"2 more times: {flaky.key} (3 attempts)" in str(report)
    table = p.to_dataframe().set_index("key")["attempts"]
    assert table.to_dict() == {flaky.key: 3, steady.key: 1}


@pytest.mark.parametrize("retries", [-1, True, 1.5, "2"])
def test_bad_retries_are_refused_before_anything_runs(retries: object, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retries must be a whole number"):
        compute(delayed(fail_first)(str(tmp_path), 0, OSError), retries=retries)  # type: ignore[call-overload]
    assert not list(tmp_path.iterdir())


def test_a_timeout_stops_a_dask_run_and_names_what_ran(dask_client: object, tmp_path: Path) -> None:
    from remote_helpers import nap_noting

    import tarry

    naps = [delayed(nap_noting)(str(tmp_path), 30, dask_key_name=f"nap-{i}") for i in range(2)]
    with (
        tarry.config.set(dask_client=dask_client),
        pytest.raises(TimeoutError, match=r"within 1 s: running at the deadline: .*'nap-"),
    ):
        compute(delayed(sum)(naps), scheduler="dask", timeout=1)
    assert not list(tmp_path.glob("*.ended"))  # not waited for
