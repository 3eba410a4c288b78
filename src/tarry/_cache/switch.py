"""Switching the cache on: ``tarry.cache(...)``, ``compute(cache=...)``, the config.

A compute's ``cache=`` wins over the ``cache`` setting, which
:func:`cache` and :func:`tarry.config.set` both change; ``False`` switches
it off for one compute. The ``cache_max_size`` setting (also
``cache(..., max_size=)``) limits the store a compute uses. The store is
opened (its ``FORMAT`` checked) once per compute, in :func:`store_for`, and
tidied once the compute has finished, in :func:`tidy`.
"""

from __future__ import annotations

import builtins
import os

from tarry import config
from tarry._cache.store import Store

__all__ = ["cache", "check_cache_option", "store_for", "tidy"]


def cache(location: str | os.PathLike[str] | None, max_size: int | str | None = None) -> config.set:
    """Keep the results of pure tasks across runs, in a directory or at an fsspec URL.

    Use it as a context manager (the previous setting comes back on exit)
    or as a plain call (it stays on). Same as
    ``tarry.config.set(cache=location)``; ``compute(cache=...)`` sets it
    for one compute.

    Pure tasks (``delayed(f, pure=True)``) are cached, and those of
    ``f.options(cache=True)``; ``f.options(cache=False)`` opts out (a pure
    task opted out is never stored, but its readers are cached). Before a
    run, every needed task's key is looked up: a hit is loaded and not run
    (nor are its inputs, if nothing else needs them); a miss runs and its
    result is written as soon as it has it, so a run that fails resumes
    where it stopped. A key covers the function's code (not its docstring
    or comments), the code of the functions it calls from your modules, the
    versions of the packages it uses, its arguments and its inputs' keys.
    :func:`tarry.explain` with ``cache=`` says what would load or run, and why.

    Results are pickled, NumPy arrays kept apart so that they load
    memory-mapped (copy-on-write: writable, and a change never reaches the
    store), pandas objects too; ``f.options(cache_format="parquet")`` stores
    a function's pandas results as Parquet instead.

    Parameters
    ----------
    location
        A directory (made if missing; it must be empty or a tarry cache), or
        a URL such as ``"s3://bucket/cache"`` or ``"file:///tmp/c"`` (needs
        ``pip install 'tarry[cache]'``). None switches caching off.
    max_size
        The most the store may hold: bytes, or a size such as ``"20 GB"``
        or ``"2GiB"``; None (the default): no limit. After a compute that
        wrote to the store, the entries used longest ago are removed until
        it holds no more (the run's own go last). Same as the
        ``cache_max_size`` setting.

    Examples
    --------
    >>> import tempfile, tarry
    >>> inc = tarry.delayed(lambda x: x + 1, pure=True)
    >>> with tarry.cache(tempfile.mkdtemp()):
    ...     first = inc(1).compute()  # runs, and stores 2
    ...     second = inc(1).compute()  # loads 2
    >>> first, second, tarry.config.get("cache")
    (2, 2, None)
    """
    return config.set(cache=location, cache_max_size=max_size)


def check_cache_option(value: object) -> bool:
    """``f.options(cache=...)``: True or False.

    Examples
    --------
    >>> check_cache_option("yes")
    Traceback (most recent call last):
    ...
    TypeError: options(cache=...) must be True or False, not 'yes'
    """
    if not isinstance(value, builtins.bool):
        raise TypeError(f"options(cache=...) must be True or False, not {value!r}")
    return value


def store_for(cache: object, create: bool = True) -> Store | None:
    """The store a compute uses: its ``cache=``, else the setting; None: no cache.

    ``create=False`` (a dry run) leaves a missing store missing.
    """
    chosen = config.get("cache") if cache is None else cache
    if chosen is None or chosen is False:
        return None
    if isinstance(chosen, Store):
        return chosen
    return Store(config.check_cache(chosen) or "", create, config.get("cache_max_size"))


def tidy(store: Store | None) -> None:
    """After a compute: keep ``store`` (if any) under its size limit."""
    if store is not None:
        store.tidy()
