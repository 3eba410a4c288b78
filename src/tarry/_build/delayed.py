"""The lazy proxy: :func:`delayed`, :class:`Delayed` and :class:`DelayedFunction`.

Calling a delayed function, an operator, an attribute access or a method
call on a :class:`Delayed` builds one :class:`~tarry._graph.Task` and wraps it
in a new ``Delayed``. Nothing runs until :func:`tarry.compute`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import operator
import os
import types
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from tarry import config
from tarry._build.labels import BINARY_OPERATORS, COMPARISONS, UNARY_OPERATORS, method_caller
from tarry._build.traverse import ATOMIC as _ATOMIC
from tarry._build.traverse import add_dep, pack
from tarry._graph import Lazy, Pack, Quote, Task, TaskGraph, check_same
from tarry._keys import new_key, tokenize

if TYPE_CHECKING:
    from concurrent.futures import Executor

__all__ = ["Delayed", "DelayedFunction", "delayed"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = ParamSpec("P")
R = TypeVar("R")

_MISSING: Any = object()
# dask's per-call keywords; taken as options only where the wrapped function
# has no parameter of that name (dask takes them always, hiding the user's).
_COMPAT_KEYWORDS = ("pure", "dask_key_name")


def _check_nout(nout: int | None) -> None:
    if nout is None:
        return
    if isinstance(nout, bool):  # a bool is an int, but never a count (dask: ValueError)
        raise ValueError(f"nout must be a whole number or None, not {nout!r}")
    if not isinstance(nout, int):
        raise TypeError(f"nout must be a whole number or None, not {nout!r}")
    if nout < 0:
        raise ValueError(f"nout must be 0 or more, not {nout}")


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _make_task(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    name: str,
    pure: bool | None = None,
    key: str | None = None,
    traverse: bool = True,
) -> Task:
    """One task for ``func(*args, **kwargs)``: the single place tasks are built."""
    deps: dict[str, Task] = {}
    wrap = pack if traverse else _shallow
    packed = []
    deep = False
    only_lazy = True
    # The loop inlines pack()'s two commonest cases: this is the hot path of
    # graph building.
    for arg in args:
        if isinstance(arg, Lazy):
            task = arg._task
            if deps.setdefault(task.key, task) is not task:
                check_same(deps[task.key], task)
            packed.append(task)
        elif type(arg) in _ATOMIC:
            only_lazy = False
            packed.append(arg)
        else:
            only_lazy = False
            arg = wrap(arg, deps)
            deep = deep or type(arg) is Pack or type(arg) is Quote
            packed.append(arg)
    packed_kw = {k: wrap(v, deps) for k, v in kwargs.items()} if kwargs else None
    if key is None:
        if pure is None:
            pure = config.get("pure")
        key = f"{name}-{tokenize(func, packed, packed_kw)}" if pure else new_key(name)
    elif not isinstance(key, str):
        raise TypeError(f"a task key must be a str, not {type(key).__name__}: {key!r}")
    args_t = tuple(packed)
    # add(x, y): one tuple serves both, one object less to track. Decided
    # without comparing arguments: that would call the user's __eq__.
    deps_t = args_t if only_lazy and len(deps) == len(args_t) else tuple(deps.values())
    return Task(key, func, args_t, packed_kw, deps_t, name, deep or packed_kw is not None)


def _shallow(obj: Any, deps: dict[str, Task]) -> Any:
    """``traverse=False``: only a lazy value itself is resolved, never its container."""
    if isinstance(obj, Lazy):
        return add_dep(obj._task, deps)
    if type(obj) is Task:
        return Quote(obj)
    return obj


def _funcname(func: Any) -> str:
    name = getattr(func, "__name__", None)
    if not isinstance(name, str):
        name = type(func).__name__
    return name


class Delayed(Lazy, Generic[T_co]):
    """A lazy value: the output of a task that has not run yet.

    Build one with :func:`delayed`; combine them with ordinary Python
    (operators, indexing, attribute access, method calls); get the value with
    :meth:`compute` or :func:`tarry.compute`.

    Examples
    --------
    >>> from tarry import delayed
    >>> x = delayed(10, name="x")
    >>> y = (x + 1) * 2
    >>> y.compute(scheduler="sync")
    22
    >>> x
    Delayed('x')
    """

    __slots__ = ("_length",)

    _length: int | None

    def __init__(self, task: Task, length: int | None = None) -> None:
        _set_task(self, task)
        _set_length(self, length)

    @property
    def key(self) -> str:
        """The key of the task whose output this is."""
        return self._task.key

    @property
    def graph(self) -> TaskGraph:
        """Read-only mapping ``key -> task`` of everything this value needs."""
        return TaskGraph([self._task])

    @property
    def dask(self) -> TaskGraph:
        """The same mapping as :attr:`graph`, under dask's name (``x.key in x.dask``)."""
        return TaskGraph([self._task])

    @property
    def _key(self) -> str:
        # dask's private name for the key, which code written for dask reads
        return self._task.key

    def __repr__(self) -> str:
        return f"Delayed({self._task.key!r})"

    def __hash__(self) -> int:
        return hash(self._task.key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Delayed, (self._task, self._length))

    # -- immutability -------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(
            f"Delayed objects are immutable: cannot set attribute {name!r}. "
            "Build a new value instead, e.g. delayed(setattr)(obj, name, value)."
        )

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"Delayed objects are immutable: cannot delete attribute {name!r}.")

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TypeError(
            "Delayed objects are immutable: item assignment is not supported. "
            "Build a new value instead, e.g. delayed(operator.setitem)(obj, index, value)."
        )

    def __delitem__(self, index: Any) -> None:
        raise TypeError("Delayed objects are immutable: item deletion is not supported.")

    # -- things that need the value now ---------------------------------------
    def __bool__(self) -> bool:
        raise TypeError(
            f"the truth value of {self!r} is not known until it is computed. "
            "Call .compute() first to branch on it, or move the if/else into a "
            "delayed function."
        )

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError(
                f"the length of {self!r} is not known before it is computed. "
                "Pass nout= to delayed (e.g. @delayed(nout=2)), or compute() first."
            )
        return self._length

    def __iter__(self) -> Iterator[Delayed[Any]]:
        if self._length is None:
            raise TypeError(
                f"{self!r} cannot be iterated or unpacked: its length is not known "
                "before it is computed. Pass nout= to delayed (e.g. @delayed(nout=2)), "
                "index it (x[0], x[1]), or compute() first."
            )
        return (self[i] for i in range(self._length))

    # -- lazy access ---------------------------------------------------------
    def __getattr__(self, attr: str) -> DelayedAttr:
        if attr.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")
        if attr == "visualise":
            # as dask does: a likely typo is still a lazy attribute, with a hint
            warnings.warn(
                "Delayed objects have no `visualise` method (this is a lazy attribute "
                "access). Perhaps you meant `visualize`?",
                UserWarning,
                stacklevel=2,
            )
        return DelayedAttr(self, attr)

    def __getitem__(self, index: Any) -> Delayed[Any]:
        return _operate(operator.getitem, self, index)

    def __call__(self, *args: Any, **kwargs: Any) -> Delayed[Any]:
        task = _make_task(_call, (self, *args), kwargs, name="call", pure=False)
        return Delayed(task)

    # -- running -------------------------------------------------------------
    def compute(
        self,
        *,
        scheduler: str | Executor | None = None,
        num_workers: int | None = None,
        optimize_graph: bool = True,
        progress: bool | None = None,
    ) -> T_co:
        """Run the graph and return this value; options as in :func:`tarry.compute`."""
        from tarry._compute import run_graph

        _, values, failure = run_graph((self,), scheduler, num_workers, progress, optimize_graph)
        if failure is not None:
            raise failure
        result: T_co = values[self._task.key]
        return result

    def persist(
        self,
        *,
        scheduler: str | Executor | None = None,
        num_workers: int | None = None,
        optimize_graph: bool = True,
        progress: bool | None = None,
    ) -> Delayed[T_co]:
        """Run the graph now and return a ``Delayed`` that holds the value.

        Options as in :func:`tarry.persist`.
        """
        from tarry._compute import persist

        result: Delayed[T_co] = persist(
            self,
            scheduler=scheduler,
            num_workers=num_workers,
            optimize_graph=optimize_graph,
            progress=progress,
        )[0]
        return result

    def visualize(
        self,
        filename: str | os.PathLike[str] | None = None,
        format: str | None = None,
        **options: Any,
    ) -> Any:
        """Draw this value's task graph with Graphviz; options as in :func:`tarry.visualize`.

        Returns an image that Jupyter shows inline; writes ``filename`` too when given.

        Examples
        --------
        >>> from tarry import delayed
        >>> delayed(abs)(-1).visualize(format="dot").data.startswith("digraph tarry {")
        True
        """
        from tarry._tools.visualize import visualize

        return visualize(self, filename=filename, format=format, **options)

    def _repr_html_(self) -> str:
        """Jupyter's view: key, task count, functions, and a picture of small graphs."""
        from tarry._tools.visualize import html_repr

        return html_repr(self)

    # Operators: filled in below by _install_operators.
    __add__: Callable[..., Delayed[Any]]
    __radd__: Callable[..., Delayed[Any]]
    __sub__: Callable[..., Delayed[Any]]
    __rsub__: Callable[..., Delayed[Any]]
    __mul__: Callable[..., Delayed[Any]]
    __rmul__: Callable[..., Delayed[Any]]
    __matmul__: Callable[..., Delayed[Any]]
    __rmatmul__: Callable[..., Delayed[Any]]
    __truediv__: Callable[..., Delayed[Any]]
    __rtruediv__: Callable[..., Delayed[Any]]
    __floordiv__: Callable[..., Delayed[Any]]
    __rfloordiv__: Callable[..., Delayed[Any]]
    __mod__: Callable[..., Delayed[Any]]
    __rmod__: Callable[..., Delayed[Any]]
    __divmod__: Callable[..., Delayed[Any]]
    __rdivmod__: Callable[..., Delayed[Any]]
    __pow__: Callable[..., Delayed[Any]]
    __rpow__: Callable[..., Delayed[Any]]
    __lshift__: Callable[..., Delayed[Any]]
    __rlshift__: Callable[..., Delayed[Any]]
    __rshift__: Callable[..., Delayed[Any]]
    __rrshift__: Callable[..., Delayed[Any]]
    __and__: Callable[..., Delayed[Any]]
    __rand__: Callable[..., Delayed[Any]]
    __xor__: Callable[..., Delayed[Any]]
    __rxor__: Callable[..., Delayed[Any]]
    __or__: Callable[..., Delayed[Any]]
    __ror__: Callable[..., Delayed[Any]]
    __lt__: Callable[..., Delayed[Any]]
    __le__: Callable[..., Delayed[Any]]
    __gt__: Callable[..., Delayed[Any]]
    __ge__: Callable[..., Delayed[Any]]
    __neg__: Callable[..., Delayed[Any]]
    __pos__: Callable[..., Delayed[Any]]
    __invert__: Callable[..., Delayed[Any]]
    __abs__: Callable[..., Delayed[Any]]

    def __eq__(self, other: object) -> Delayed[Any]:  # type: ignore[override]
        return _operate(operator.eq, self, other)

    def __ne__(self, other: object) -> Delayed[Any]:  # type: ignore[override]
        return _operate(operator.ne, self, other)


# Slot setters, bypassing the __setattr__ that makes Delayed immutable.
_set_task = Lazy.__dict__["_task"].__set__
_get_task = Lazy.__dict__["_task"].__get__
_set_length = Delayed.__dict__["_length"].__set__


class DelayedAttr(Delayed[Any]):
    """``x.attr``: a lazy attribute that, when called, becomes ONE method-call task.

    Its own ``getattr`` task is made only if the attribute is used as a value,
    so ``x.method(...)`` costs one task and no wasted key hashing.
    """

    __slots__ = ("_attr", "_owner")

    _attr: str
    _owner: Delayed[Any]

    def __init__(self, owner: Delayed[Any], attr: str) -> None:
        _set_length(self, None)
        _set(self, "_owner", owner)
        _set(self, "_attr", attr)

    @property  # type: ignore[override,unused-ignore]
    def _task(self) -> Task:  # type: ignore[override]
        try:
            task: Task = _get_task(self)
        except AttributeError:
            task = _make_task(getattr, (self._owner, self._attr), None, "getattr", True)
            _set_task(self, task)
        return task

    def __call__(self, *args: Any, **kwargs: Any) -> Delayed[Any]:
        pure = kwargs.pop("pure", None)
        key = kwargs.pop("dask_key_name", None)
        task = _make_task(
            _call_method,
            (self._owner, self._attr, *args),
            kwargs,
            name=self._attr,
            pure=pure,
            key=key,
        )
        return Delayed(task)

    def __reduce__(self) -> tuple[Any, ...]:
        return (DelayedAttr, (self._owner, self._attr))


def _call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


@method_caller  # pictures label its tasks ``.method()``
def _call_method(obj: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(obj, method)(*args, **kwargs)


def _operate(op: Callable[..., Any], *args: Any) -> Delayed[Any]:
    return Delayed(_make_task(op, args, None, name=op.__name__.strip("_"), pure=True))


def _install_operators() -> None:
    # The table is in labels.py, which names these operators' tasks in pictures.
    for op, _ in BINARY_OPERATORS:
        name = op.__name__.strip("_")
        setattr(Delayed, f"__{name}__", _forward(op))
        setattr(Delayed, f"__r{name}__", _reflected(op))
    for op, _ in COMPARISONS:
        setattr(Delayed, f"__{op.__name__}__", _forward(op))
    for op, _ in UNARY_OPERATORS:
        setattr(Delayed, f"__{op.__name__}__", _unary(op))


def _forward(op: Callable[..., Any]) -> Callable[[Delayed[Any], Any], Delayed[Any]]:
    def method(self: Delayed[Any], other: Any) -> Delayed[Any]:
        return _operate(op, self, other)

    return method


def _reflected(op: Callable[..., Any]) -> Callable[[Delayed[Any], Any], Delayed[Any]]:
    def method(self: Delayed[Any], other: Any) -> Delayed[Any]:
        return _operate(op, other, self)

    return method


def _unary(op: Callable[..., Any]) -> Callable[[Delayed[Any]], Delayed[Any]]:
    def method(self: Delayed[Any]) -> Delayed[Any]:
        return _operate(op, self)

    return method


_install_operators()


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
    ) -> None:
        _check_nout(nout)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
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
        # dask's per-call keywords this function leaves to us; found on the
        # first call with keywords (inspect.signature is slow)
        _set(self, "_compat", None)

    _target: Callable[..., Any]
    _pure: bool | None
    _task_name: str
    _nout: int | None
    _traverse: bool
    _call_key: str | None
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
                key = kwargs.pop("dask_key_name")
        task = _make_task(self._target, args, kwargs, self._task_name, pure, key, self._traverse)
        return Delayed(task, self._nout)

    def options(
        self,
        *,
        key: str | None = _MISSING,
        pure: bool | None = _MISSING,
        nout: int | None = _MISSING,
        name: str = _MISSING,
    ) -> DelayedFunction[P, R]:
        """The same lazy function with other settings, for one call or many.

        Never collides with the wrapped function's own keywords.

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
        """
        return DelayedFunction(
            self.__wrapped__,
            pure=self._pure if pure is _MISSING else pure,
            name=self._task_name if name is _MISSING else name,
            nout=self._nout if nout is _MISSING else nout,
            traverse=self._traverse,
            key=self._call_key if key is _MISSING else key,
        )

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
        )

    def __repr__(self) -> str:
        return f"<delayed function {self._task_name}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_function, (self.__wrapped__, self._pure, self._task_name, self._nout,
                                    self._traverse, self._call_key))  # fmt: skip


def _rebuild_function(
    func: Any, pure: bool | None, name: str, nout: int | None, traverse: bool, key: str | None
) -> DelayedFunction[Any, Any]:
    return DelayedFunction(func, pure=pure, name=name, nout=nout, traverse=traverse, key=key)


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
    if callable(obj) or isinstance(obj, classmethod | staticmethod):
        return DelayedFunction(obj, pure=pure, name=name, nout=nout, traverse=traverse)
    return Delayed(_value_task(obj, name=name, pure=pure, traverse=traverse), nout)


def _value_task(obj: Any, *, name: str | None, pure: bool | None, traverse: bool) -> Task:
    label = type(obj).__name__
    deps: dict[str, Task] = {}
    packed = pack(obj, deps) if traverse else obj
    if name is not None:
        key = name
    elif config.get("pure") if pure is None else pure:
        key = f"{label}-{tokenize(packed)}"
    else:
        key = new_key(label)
    if not deps:
        return Task.literal(key, obj)
    return Task(key, _identity, (packed,), None, tuple(deps.values()), label, True)


def _identity(x: T) -> T:
    return x
