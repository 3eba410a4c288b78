"""Settings that apply to every compute unless a call says otherwise.

Use :func:`set` as a plain call (the setting stays) or as a context manager
(the previous value comes back on exit). A keyword given to ``compute()``
wins over both.

Examples
--------
>>> import tarry
>>> with tarry.config.set(scheduler="sync"):
...     tarry.config.get("scheduler")
'sync'
>>> tarry.config.get("scheduler")
'threads'
"""

from __future__ import annotations

import builtins
import numbers
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from tarry._cache.store import check_location as check_cache
from tarry._cache.tidy import parse_size
from tarry._schedule import check_scheduler

__all__ = ["check_cache", "check_cache_max_size", "chosen", "get", "set"]

_DEFAULTS: dict[str, Any] = {"scheduler": "threads", "num_workers": None, "progress": False,
             "max_threads": 32, "ray_address": None, "dask_client": None,
             "pure": False, "timeout": None, "cache": None,
             "cache_max_size": None}  # fmt: skip
_settings: dict[str, Any] = dict(_DEFAULTS)
#: dask's names for tarry's settings: ``dask.config.set(delayed_pure=True)`` moved over works
_ALIASES: dict[str, str] = {"delayed_pure": "pure"}
# the settings set() was given (and not undone): dask's settings count only for the others
_chosen: builtins.set[str] = builtins.set()
_lock = threading.Lock()


def check_num_workers(value: object) -> int | None:
    """Return ``value`` if it is a valid worker count (or None), else raise."""
    if value is None:
        return None
    if isinstance(value, builtins.bool) or not isinstance(value, int):
        raise TypeError(f"num_workers must be a whole number or None, not {value!r}")
    if value < 1:
        raise ValueError(f"num_workers must be at least 1, not {value}")
    return value


def check_progress(value: object) -> bool:
    """Return ``value`` if it is True or False, else raise."""
    return _check_bool("progress", value)


def check_pure(value: object) -> bool:
    """Return ``value`` if it is True or False, else raise."""
    return _check_bool("pure", value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, builtins.bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return value


def check_timeout(value: object) -> float | None:
    """Return ``value`` as seconds if it is a number above 0 (or None), else raise.

    Examples
    --------
    >>> check_timeout(2), check_timeout(None), check_timeout(float("inf"))
    (2.0, None, inf)
    >>> check_timeout(0)
    Traceback (most recent call last):
    ...
    ValueError: timeout must be a number of seconds above 0 (or None: no limit), not 0
    """
    if value is None:
        return None
    if isinstance(value, builtins.bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"timeout must be a number of seconds or None, not {value!r}")
    seconds = float(value)
    if not seconds > 0:  # NaN too
        raise ValueError(
            f"timeout must be a number of seconds above 0 (or None: no limit), not {value!r}"
        )
    return seconds


def check_max_threads(value: object) -> int:
    """Return ``value`` if it is a valid thread cap, else raise."""
    if isinstance(value, builtins.bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_threads must be a whole number of at least 1, not {value!r}")
    return value


def check_ray_address(value: object) -> str | None:
    """Return ``value`` if it is a Ray cluster address (or None), else raise."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"ray_address must be a str such as 'ray://host:10001', not {value!r}")
    return value


def check_dask_client(value: object) -> object:
    """Return ``value`` if it looks like a ``distributed.Client`` (or is None), else raise."""
    looks_right = callable(getattr(value, "get", None)) and callable(getattr(value, "gather", None))
    if value is not None and not looks_right:
        raise TypeError(f"dask_client must be a distributed.Client or None, not {value!r}")
    return value


def check_cache_max_size(value: object) -> int | None:
    """Return ``value`` as bytes if it is a size such as ``"20 GB"`` (or None), else raise.

    Examples
    --------
    >>> check_cache_max_size("2 GiB"), check_cache_max_size(None)
    (2147483648, None)
    """
    return parse_size(value, "cache_max_size")


_CHECKS: dict[str, Callable[[object], Any]] = {
    "scheduler": check_scheduler,
    "num_workers": check_num_workers,
    "progress": check_progress,
    "max_threads": check_max_threads,
    "ray_address": check_ray_address,
    "dask_client": check_dask_client,
    "pure": check_pure,
    "timeout": check_timeout,
    "cache": check_cache,
    "cache_max_size": check_cache_max_size,
}


def chosen(name: str) -> bool:
    """Whether setting ``name`` was given to :class:`set` (else it has its default).

    Examples
    --------
    >>> with set(progress=False):
    ...     chosen("progress")
    True
    >>> chosen("progress")
    False
    """
    get(name)  # an unknown name raises
    return _ALIASES.get(name, name) in _chosen


def get(name: str) -> Any:
    """The current value of setting ``name`` (dask's ``delayed_pure`` is ``pure``)."""
    name = _ALIASES.get(name, name)
    if name not in _settings:
        raise KeyError(f"unknown setting {name!r}; known settings: {', '.join(_settings)}")
    return _settings[name]


class set:  # noqa: N801 - mirrors dask.config.set, used as a function
    """Change settings now; as a context manager, restore them on exit.

    Parameters
    ----------
    scheduler
        Default scheduler: ``"threads"``, ``"sync"``, ``"processes"``, ``"ray"``,
        ``"dask"``, or a ``concurrent.futures.Executor``.
    num_workers
        Default number of workers (None: the usable CPUs).
    progress
        Show a progress bar for every compute that lasts more than a second
        (default False).
    ray_address
        Address of the Ray cluster the ``"ray"`` scheduler connects to (read
        at the first Ray compute of the process); None: ``RAY_ADDRESS``, else
        a local cluster.
    dask_client
        The ``distributed.Client`` the ``"dask"`` scheduler runs on; None:
        the current default client.
    pure
        Default of ``delayed(..., pure=...)`` for functions, values and
        method calls that do not say; default False: every call is a new
        task. Read when a task is built. ``delayed_pure=``, dask's name,
        sets it too.
    timeout
        Default of ``compute(timeout=...)``: seconds a compute may run
        before it stops with a :class:`TimeoutError`; None (the default):
        no limit.
    cache
        Where results are kept across runs: a directory or an fsspec URL;
        None (the default): nowhere. See :func:`tarry.cache`.
    cache_max_size
        The most the cache may hold: bytes, or a size such as ``"20 GB"``;
        after a compute that wrote to it, the least recently used entries
        are evicted down to it. None (the default): no limit.
    """

    def __init__(self, **settings: Any) -> None:
        settings = {_ALIASES.get(name, name): value for name, value in settings.items()}
        unknown = builtins.set(settings) - builtins.set(_DEFAULTS)
        if unknown:
            raise TypeError(
                f"unknown setting(s) {sorted(unknown)}; known settings: {', '.join(_DEFAULTS)}"
            )
        checked = {name: _CHECKS[name](value) for name, value in settings.items()}
        with _lock:
            self._previous = {name: _settings[name] for name in checked}
            self._unchosen = checked.keys() - _chosen
            _settings.update(checked)
            _chosen.update(checked)

    def __enter__(self) -> set:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _lock:
            _settings.update(self._previous)
            _chosen.difference_update(self._unchosen)
