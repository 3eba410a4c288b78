"""Wrapping: :func:`delayed`, and :class:`DelayedFunction`, the lazy function it makes.

A lazy function is itself a lazy leaf (a :class:`~tarry._build.delayed.Delayed`
whose value is the callable), as in dask; calling it builds one task. A
value that is not callable becomes a lazy leaf of its own.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar, overload

from tarry import config
from tarry._build.annotate import check_options
from tarry._build.delayed import (
    Delayed,
    _check_nout,
    _funcname,
    _get_task,
    _make_task,
    _set,
    _set_length,
    _set_task,
)
from tarry._build.traverse import pack, shallow
from tarry._cache.formats import check_format
from tarry._graph import Lazy, Task
from tarry._keys import check_key, new_key
from tarry._tokens import tokenize

__all__ = ["DelayedFunction", "delayed"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


class _NotGiven:
    """The default of arguments that may be left out, where None is a value they can take.

    Named, with a repr that says what it means, so that ``help(delayed)``
    reads ``obj: 'Any' = <not given>`` instead of ``<object object at 0x…>``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not given>"


_MISSING: Any = _NotGiven()
# dask's per-call keywords; taken as options only where the wrapped function
# has no parameter of that name (dask takes them always, hiding the user's).
_COMPAT_KEYWORDS = ("pure", "dask_key_name")


class DelayedFunction(Delayed[Callable[P, R]]):
    """A lazy function: calling it builds a task and returns a :class:`Delayed`.

    Made by :func:`delayed` from any callable: a function, a method, a class
    or a callable object. It is itself a lazy leaf whose value is the
    callable, as in dask: ``.compute()`` returns it, attribute access is lazy
    (``delayed(C).make(2)`` calls a classmethod in a task), and inside another
    task's arguments it reaches the function as the plain callable. Keeps the
    wrapped callable's ``__name__``, ``__doc__`` and ``__wrapped__``, and its
    return type for type checkers.

    Examples
    --------
    >>> from tarry import delayed
    >>> @delayed
    ... def inc(x: int) -> int:
    ...     return x + 1
    >>> inc.__name__
    'inc'
    >>> inc.options(key="my-inc")(1)
    Delayed('my-inc')
    >>> inc(1).compute(scheduler="sync")
    2
    >>> delayed(list)(delayed(map)(inc, [1, 2])).compute(scheduler="sync")  # plain inc
    [2, 3]
    """

    __wrapped__: Callable[P, R]
    __name__: str
    __qualname__: str

    def __init__(
        self,
        func: Callable[P, R],
        *,
        pure: bool | None = None,
        name: str | None = None,
        nout: int | None = None,
        traverse: bool = True,
        key: str | None = None,
        task_options: Mapping[str, Any] | None = None,
    ) -> None:
        _check_nout(nout)
        if name is not None:
            check_key(name, "name")
        if key is not None:
            check_key(key, "key")
        _set_length(self, None)  # the function itself has no length; its calls may
        # Only the identifying attributes are copied, never the callable's
        # __dict__: an object's attributes stay lazy (delayed(obj).a is a task).
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            with contextlib.suppress(AttributeError):
                _set(self, attr, getattr(func, attr))
        _set(self, "__wrapped__", func)
        # classmethod/staticmethod objects are not callable before binding
        wrapped: Any = func
        if isinstance(wrapped, classmethod | staticmethod):
            wrapped = wrapped.__func__
        target: Callable[..., Any] = wrapped
        task_name = name or _funcname(target)
        if not isinstance(getattr(self, "__name__", None), str):
            _set(self, "__name__", task_name)
        _set(self, "_target", target)
        _set(self, "_pure", pure)
        _set(self, "_task_name", task_name)
        _set(self, "_nout", nout)
        _set(self, "_traverse", traverse)
        _set(self, "_call_key", key)
        #: retries, retry_on, resources given with .options() (checked)
        _set(self, "_task_options", dict(task_options) if task_options else None)
        # dask's per-call keywords this function leaves to us; found on the
        # first call with keywords (inspect.signature is slow)
        _set(self, "_compat", None)

    _target: Callable[..., Any]
    _pure: bool | None
    _task_name: str
    _nout: int | None
    _traverse: bool
    _call_key: str | None
    _task_options: dict[str, Any] | None
    _compat: frozenset[str] | None

    @property  # type: ignore[override,unused-ignore]
    def _task(self) -> Task:  # type: ignore[override]
        # The leaf holding the callable is made only when the function is used
        # as a value (an argument, compute()), never for a plain call.
        try:
            task: Task = _get_task(self)
        except AttributeError:
            name = self._task_name
            pure = config.get("pure") if self._pure is None else self._pure
            key = f"{name}-{tokenize(self._target)}" if pure else new_key(name)
            task = Task.literal(key, self._target, name)
            _set_task(self, task)
        return task

    # Arguments are Any, not P: any argument may be lazy (a Delayed[int]
    # where an int is expected), which ParamSpec cannot express. The return
    # type is kept, so ``inc(1)`` is a ``Delayed[int]`` to type checkers.
    def __call__(self, *args: Any, **kwargs: Any) -> Delayed[R]:
        pure, key = self._pure, self._call_key
        if kwargs and ("pure" in kwargs or "dask_key_name" in kwargs):
            compat = self._compat
            if compat is None:
                compat = _compat_keywords(self._target)
                _set(self, "_compat", compat)
            if "pure" in compat and "pure" in kwargs:
                pure = kwargs.pop("pure")
            if "dask_key_name" in compat and "dask_key_name" in kwargs:
                key = check_key(kwargs.pop("dask_key_name"), "dask_key_name")
        task = _make_task(
            self._target, args, kwargs, self._task_name, pure, key, self._traverse,
            self._task_options,
        )  # fmt: skip
        return Delayed(task, self._nout)

    def options(
        self,
        *,
        key: str | None = _MISSING,
        pure: bool | None = _MISSING,
        nout: int | None = _MISSING,
        name: str = _MISSING,
        cache: bool | None = None,
        cache_format: str | None = None,
        retries: int | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
        resources: Mapping[str, float] | None = None,
        workers: str | Iterable[str] | None = None,
        priority: float | None = None,
    ) -> DelayedFunction[P, R]:
        """The same lazy function with other settings, for one call or many.

        Never collides with the wrapped function's own keywords. The last
        five are the task options also given by :func:`tarry.annotate`
        blocks (which says which scheduler honours what); a function's own
        win over a block's.

        Parameters
        ----------
        key
            Exact key of the next task (give a fresh one per call).
        pure
            Key the task by the content of its function and arguments.
        nout
            Number of outputs, for unpacking.
        name
            Prefix of generated keys and label in pictures.
        cache
            ``True`` keeps the results across runs when a cache is on
            (:func:`tarry.cache`) even if the function is not pure; ``False``
            never caches them. Default: pure tasks are cached.
        cache_format
            How a cached result is stored: ``"auto"`` (the default, today
            the same as ``"pickle"``: pickled, with NumPy and pandas data
            kept apart and memory-mapped on load) or ``"parquet"`` (pandas
            objects as Parquet, which other tools read; needs pyarrow; what
            it cannot hold exactly is pickled).
        retries
            Further attempts after a failure, on every scheduler (Ray and Dask
            retry with their own machinery); ``compute(retries=...)`` sets it
            for all tasks.
        retry_on
            The exception classes retried (default: any ``Exception``).
        resources
            What one run holds, such as ``{"CPU": 2, "GPU": 1}`` (Ray and Dask
            resources).
        workers
            The Dask workers the task may run on (addresses or host names).
        priority
            Dask runs tasks of higher priority first.

        Examples
        --------
        >>> from tarry import delayed
        >>> flaky = delayed(abs).options(retries=3, retry_on=ConnectionError)
        >>> flaky(-1)._task.options.retries
        3
        """
        changes = check_options(retries, retry_on, resources, workers, priority, cache)
        if cache_format is not None:
            changes["cache_format"] = check_format(cache_format)
        return DelayedFunction(
            self.__wrapped__,
            pure=self._pure if pure is _MISSING else pure,
            name=self._task_name if name is _MISSING else name,
            nout=self._nout if nout is _MISSING else nout,
            traverse=self._traverse,
            key=self._call_key if key is _MISSING else key,
            task_options={**(self._task_options or {}), **changes},
        )

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> DelayedFunction[P, R]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Callable[..., Delayed[R]]: ...
    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # Methods bind like the wrapped function would, and stay lazy: a
        # method of an instance is a bound method of this lazy function, as
        # with dask; a classmethod binds to the class.
        wrapped: Any = self.__wrapped__
        if isinstance(wrapped, classmethod):
            return self._rebind(wrapped.__get__(instance, owner))
        if instance is None or not isinstance(wrapped, types.FunctionType):
            return self
        return types.MethodType(self, instance)

    def _rebind(self, func: Callable[..., Any]) -> DelayedFunction[Any, Any]:
        return DelayedFunction(
            func,
            pure=self._pure,
            name=self._task_name,
            nout=self._nout,
            traverse=self._traverse,
            key=self._call_key,
            task_options=self._task_options,
        )

    def __repr__(self) -> str:
        return f"<delayed function {self._task_name}>"

    def __reduce__(self) -> tuple[Any, ...]:
        state = (self._pure, self._task_name, self._nout, self._traverse, self._call_key)
        return (_rebuild_function, (self.__wrapped__, *state, self._task_options))


def _rebuild_function(
    func: Any,
    pure: bool | None,
    name: str,
    nout: int | None,
    traverse: bool,
    key: str | None,
    task_options: dict[str, Any] | None = None,
) -> DelayedFunction[Any, Any]:
    return DelayedFunction(
        func, pure=pure, name=name, nout=nout, traverse=traverse, key=key, task_options=task_options
    )


def _compat_keywords(func: Callable[..., Any]) -> frozenset[str]:
    """dask's per-call keywords that ``func`` does not itself declare."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return frozenset(_COMPAT_KEYWORDS)
    return frozenset(k for k in _COMPAT_KEYWORDS if k not in params)


@overload
def delayed(  # type: ignore[overload-overlap]
    obj: Delayed[T],
    *,
    pure: bool | None = ...,
    name: str | None = ...,
    nout: int | None = ...,
    traverse: bool = ...,
) -> Delayed[T]: ...
@overload
def delayed(
    obj: Callable[P, R],
    *,
    pure: bool | None = ...,
    name: str | None = ...,
    nout: int | None = ...,
    traverse: bool = ...,
) -> DelayedFunction[P, R]: ...
@overload
def delayed(
    *,
    pure: bool | None = ...,
    name: str | None = ...,
    nout: int | None = ...,
    traverse: bool = ...,
) -> Callable[[Callable[P, R]], DelayedFunction[P, R]]: ...
@overload
def delayed(
    obj: T,
    *,
    pure: bool | None = ...,
    name: str | None = ...,
    nout: int | None = ...,
    traverse: bool = ...,
) -> Delayed[T]: ...
def delayed(
    obj: Any = _MISSING,
    *,
    pure: bool | None = None,
    name: str | None = None,
    nout: int | None = None,
    traverse: bool = True,
) -> Any:
    """Make a function lazy, or wrap a value as a lazy leaf.

    Parameters
    ----------
    obj
        A callable (function, method, class, ...) to make lazy, or any other
        value. Left out, ``delayed`` returns a decorator:
        ``@delayed(pure=True)``.
    pure
        Key calls by the content of function and arguments, so equal calls
        are one task (and keys agree across processes). Default (None):
        the ``pure`` setting of :func:`tarry.config.set`, False unless
        changed, so that every call is a new task.
    name
        For a function: the name in its tasks' keys and pictures. For a
        value: the exact key.
    nout
        Number of outputs of each call (or of the value), so that ``len()``,
        iteration and tuple unpacking work.
    traverse
        Look for lazy values inside list, tuple, set, dict, dataclass,
        namedtuple, slice and generator arguments (default). ``False``
        passes containers through untouched (faster for large ones).

    Examples
    --------
    >>> from tarry import delayed
    >>> def add(x, y):
    ...     return x + y
    >>> total = delayed(add)(1, delayed(2))
    >>> total.compute(scheduler="sync")
    3
    >>> @delayed(nout=2)
    ... def split(x):
    ...     return x // 10, x % 10
    >>> tens, ones = split(42)
    >>> (tens * 10 + ones).compute(scheduler="sync")
    42
    """
    _check_nout(nout)
    if name is not None:
        check_key(name, "name")
    if obj is _MISSING:
        return functools.partial(delayed, pure=pure, name=name, nout=nout, traverse=traverse)
    if isinstance(obj, DelayedFunction):
        if pure is not None:
            obj = obj.options(pure=pure)
        return obj if nout is None else obj.options(nout=nout)
    if isinstance(obj, Lazy):
        if name is not None or nout is not None:
            raise TypeError(
                f"{obj!r} is already lazy: delayed() cannot rename it or change its nout. "
                "Wrap the value before it becomes lazy, or use "
                "delayed(func).options(key=...) when you build it."
            )
        return obj
    # a dask.delayed value is callable, but stands for its value, as in dask
    dask_value = hasattr(type(obj), "__dask_graph__")
    if not dask_value and (callable(obj) or isinstance(obj, classmethod | staticmethod)):
        return DelayedFunction(obj, pure=pure, name=name, nout=nout, traverse=traverse)
    return Delayed(_value_task(obj, name=name, pure=pure, traverse=traverse), nout)


def _value_task(obj: Any, *, name: str | None, pure: bool | None, traverse: bool) -> Task:
    label = type(obj).__name__
    deps: dict[str, Task] = {}
    packed = pack(obj, deps) if traverse else shallow(obj, deps)
    by_content = name is None and (config.get("pure") if pure is None else pure)
    if name is not None:
        key = name
    elif by_content:
        key = f"{label}-{tokenize(packed)}"
    else:
        key = new_key(label)
    if not deps:
        return Task.literal(key, obj, pure=by_content)
    # a container of lazy values: determined by its inputs, so it may be cached
    return Task(key, _identity, (packed,), None, tuple(deps.values()), label, True, pure=True)


def _identity(x: T) -> T:
    return x
