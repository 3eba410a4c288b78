"""tarry.annotate and the options it gives the tasks built inside it."""

from __future__ import annotations

import pytest

from tarry import annotate, delayed
from tarry._graph import TaskOptions


def test_tasks_built_inside_a_block_carry_its_options_and_others_do_not() -> None:
    with annotate(retries=3, resources={"GPU": 1}):
        inside = delayed(abs)(-1)
        operator = inside + 1
    outside = delayed(abs)(-1)
    for lazy in (inside, operator):
        assert lazy._task.options == TaskOptions(retries=3, resources={"GPU": 1})
    assert outside._task.options is None


def test_an_inner_block_wins_over_an_outer_one_for_what_it_sets() -> None:
    with annotate(retries=1, retry_on=OSError), annotate(retries=4):
        task = delayed(abs)(-1)._task
    assert task.options == TaskOptions(retries=4, retry_on=(OSError,))


def test_a_block_ends_with_its_with_statement_even_on_error() -> None:
    with pytest.raises(RuntimeError), annotate(retries=2):
        raise RuntimeError
    assert delayed(abs)(-1)._task.options is None


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        ({"retries": -1}, ValueError, "retries must be a whole number"),
        ({"retries": True}, ValueError, "retries must be a whole number"),
        ({"retry_on": "OSError"}, TypeError, "retry_on must be an exception class"),
        ({"retry_on": ()}, TypeError, "retry_on must be an exception class"),
        ({"resources": {"GPU": -1}}, TypeError, "resources must map resource names"),
        ({"resources": ["GPU"]}, TypeError, "resources must map resource names"),
    ],
)
def test_bad_options_are_refused_when_the_block_opens(
    options: dict[str, object], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says), annotate(**options):  # type: ignore[arg-type]
        pass


def test_a_functions_own_options_win_over_the_blocks_and_add_to_them() -> None:
    flaky = delayed(abs).options(retries=1, retry_on=ConnectionError)
    with annotate(retries=5, resources={"CPU": 2}):
        task = flaky(-1)._task
    assert task.options == TaskOptions(retries=1, retry_on=(ConnectionError,), resources={"CPU": 2})


def test_options_survive_rebinding_and_pickling() -> None:
    import pickle

    flaky = delayed(abs).options(retries=2)
    again = pickle.loads(pickle.dumps(flaky))
    assert again(-1)._task.options == TaskOptions(retries=2)
    assert flaky.options(resources={"GPU": 1})(-1)._task.options == TaskOptions(
        retries=2, resources={"GPU": 1}
    )
