"""What tasks ask of the scheduler: retries, resources and placement, per call or per block.

Two spellings set the same :class:`~tarry._graph.TaskOptions`:
``f.options(retries=2)`` for the calls of one lazy function, and
``with tarry.annotate(retries=2):`` for every task built inside the block
(as ``dask.annotate`` does). Options given closer to the call win: a
function's options over the block's, an inner block's over an outer one's.

Examples
--------
>>> from tarry import delayed
>>> with annotate(retries=2, retry_on=OSError):
...     task = delayed(abs)(-1)._task
>>> task.options.retries, task.options.retry_on
(2, (<class 'OSError'>,))
>>> delayed(abs)(-1)._task.options is None
True
"""

from __future__ import annotations

import builtins
import contextvars
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tarry._cache.switch import check_cache_option
from tarry._graph import TaskOptions

__all__ = ["annotate", "check_options", "current", "merged"]

_current: contextvars.ContextVar[TaskOptions | None] = contextvars.ContextVar(
    "tarry_annotations", default=None
)


def current() -> TaskOptions | None:
    """The options of the innermost :func:`annotate` block, if any."""
    return _current.get()


def check_options(
    retries: object = None,
    retry_on: object = None,
    resources: object = None,
    workers: object = None,
    priority: object = None,
    cache: object = None,
) -> dict[str, Any]:
    """The given options, checked and normalised; raises a clear error for a bad one.

    Examples
    --------
    >>> check_options(retries=1, retry_on=(OSError, TimeoutError))
    {'retries': 1, 'retry_on': (<class 'OSError'>, <class 'TimeoutError'>)}
    >>> check_options(workers="tcp://10.0.0.5:8786", priority=10)
    {'workers': ('tcp://10.0.0.5:8786',), 'priority': 10}
    >>> check_options(retries=-1)
    Traceback (most recent call last):
    ...
    ValueError: retries must be a whole number of at least 0, not -1
    """
    checked: dict[str, Any] = {}
    if retries is not None:
        if isinstance(retries, builtins.bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a whole number of at least 0, not {retries!r}")
        checked["retries"] = retries
    if retry_on is not None:
        kinds = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        if not kinds or not all(
            isinstance(k, type) and issubclass(k, BaseException) for k in kinds
        ):
            raise TypeError(
                "retry_on must be an exception class or a tuple of them, such as "
                f"(OSError, TimeoutError), not {retry_on!r}"
            )
        checked["retry_on"] = kinds
    if resources is not None:
        if not isinstance(resources, Mapping) or not all(
            isinstance(k, str)
            and isinstance(v, int | float)
            and not isinstance(v, builtins.bool)
            and v >= 0
            for k, v in resources.items()
        ):
            raise TypeError(
                "resources must map resource names to amounts of at least 0, such as "
                f'{{"CPU": 2, "GPU": 1}}, not {resources!r}'
            )
        checked["resources"] = dict(resources)
    if workers is not None:
        names = (workers,) if isinstance(workers, str) else workers
        if not isinstance(names, list | tuple | set | frozenset) or not all(
            isinstance(w, str) and w for w in names
        ):
            raise TypeError(
                "workers must be a worker's address or host name, or a list of them, such as "
                f'["tcp://10.0.0.5:40331", "gpu-node-1"], not {workers!r}'
            )
        checked["workers"] = tuple(names)
    if priority is not None:
        if isinstance(priority, builtins.bool) or not isinstance(priority, int | float):
            raise TypeError(f"priority must be a number (higher runs first), not {priority!r}")
        checked["priority"] = priority
    if cache is not None:
        checked["cache"] = check_cache_option(cache)
    return checked


def merged(base: TaskOptions | None, changes: Mapping[str, Any]) -> TaskOptions | None:
    """``base`` with ``changes`` (already checked) applied; None if nothing is set.

    Examples
    --------
    >>> merged(TaskOptions(retries=1), {"resources": {"GPU": 1}})[:3]
    (1, (<class 'Exception'>,), {'GPU': 1})
    """
    if not changes:
        return base
    return (base or TaskOptions())._replace(**changes)


@contextmanager
def annotate(
    *,
    retries: int | None = None,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    resources: Mapping[str, float] | None = None,
    workers: str | Iterable[str] | None = None,
    priority: float | None = None,
    cache: bool | None = None,
) -> Iterator[None]:
    """Give every task built inside the block these options.

    Every scheduler honours ``retries`` and ``retry_on``. The others are
    the clusters' business:

    ======================  =====================================  ====================
    option                  Dask                                   Ray
    ======================  =====================================  ====================
    ``resources``           the workers' declared resources        ``num_cpus``,
                            (``dask worker --resources "GPU=1"``)  ``num_gpus``,
                            a task waits for a worker that has     ``memory``, custom
                            them, as in Dask                       resources
    ``workers``             restricts where the task runs          ignored
    ``priority``            dask's ``priority``: higher first      ignored
    ======================  =====================================  ====================

    The local schedulers (``"sync"``, ``"threads"``, ``"processes"``, an
    Executor) ignore ``workers`` and ``priority``, and of ``resources`` count
    ``CPU`` only: a task with ``{"CPU": n}`` holds n of the pool's workers
    while it runs (see :mod:`tarry._schedule.budget`).

    Parameters
    ----------
    retries
        Further attempts after a failure (the task runs at most ``retries + 1`` times).
    retry_on
        The exception classes that are retried; others fail the run at once.
        Default: any ``Exception``.
    resources
        What one run of the task holds, such as ``{"CPU": 2}`` or ``{"GPU": 1}``:
        passed to Ray and Dask; the local pools count ``CPU``.
    workers
        The Dask workers the task may run on: addresses (``"tcp://10.0.0.5:40331"``)
        or host names.
    priority
        Dask runs a task of higher priority first when several could start
        (default 0; the tasks of one compute otherwise run in dask's order).
    cache
        ``True`` keeps the results of the block's tasks across runs when a
        cache is on (:func:`tarry.cache`), pure or not; ``False`` never
        caches them. Default: pure tasks are cached.

    Examples
    --------
    >>> from tarry import delayed
    >>> with annotate(workers="gpu-node-1", priority=5):
    ...     options = delayed(abs)(-1)._task.options
    >>> options.workers, options.priority
    (('gpu-node-1',), 5)
    """
    changes = check_options(retries, retry_on, resources, workers, priority, cache)
    token = _current.set(merged(_current.get(), changes))
    try:
        yield
    finally:
        _current.reset(token)
