"""The lazy proxy: :class:`Delayed`, and the one place tasks are built.

An operator, an attribute access or a method call on a :class:`Delayed`
builds one :class:`~tarry._graph.Task` and wraps it in a new ``Delayed``
(lazy functions, which build tasks when called, are in :mod:`.wrap`).
Nothing runs until :func:`tarry.compute`.
"""

from __future__ import annotations

import operator
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from tarry import config
from tarry._build.annotate import current as current_options
from tarry._build.annotate import merged
from tarry._build.labels import BINARY_OPERATORS, COMPARISONS, UNARY_OPERATORS, method_caller
from tarry._build.traverse import ATOMIC as _ATOMIC
from tarry._build.traverse import pack, shallow
from tarry._graph import Lazy, Pack, Quote, Task, TaskGraph, TaskOptions, check_same, resolve
from tarry._interop.collection import DaskCollection
from tarry._keys import check_key, new_key
from tarry._schedule.tracebacks import release_own_frames
from tarry._tokens import tokenize

if TYPE_CHECKING:
    from concurrent.futures import Executor
    from os import PathLike

    from tarry._tools.visualize.jupyter import Shown

__all__ = ["Delayed", "DelayedAttr", "persist"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = ParamSpec("P")
R = TypeVar("R")


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
    options: Mapping[str, Any] | None = None,
) -> Task:
    """One task for ``func(*args, **kwargs)``: the single place tasks are built.

    ``options``: the function's own task options (checked), applied over
    those of the enclosing :func:`tarry.annotate` blocks. A ``key`` given
    is checked by the caller (:func:`~tarry._keys.check_key`).
    """
    deps: dict[str, Task] = {}
    wrap = pack if traverse else shallow
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
    args_t = tuple(packed)
    # add(x, y): one tuple serves both, one object less to track. Decided
    # without comparing arguments: that would call the user's __eq__.
    deps_t = args_t if only_lazy and len(deps) == len(args_t) else tuple(deps.values())
    block = current_options()
    return Task(
        key,
        func,
        args_t,
        packed_kw,
        deps_t,
        name,
        deep or packed_kw is not None,
        block if not options else merged(block, options),
        bool(pure),
    )


def _funcname(func: Any) -> str:
    name = getattr(func, "__name__", None)
    if not isinstance(name, str):
        name = type(func).__name__
    # dask's name too: a key's name part stays an identifier, as dask's tools expect
    return "lambda" if name == "<lambda>" else name


class Delayed(Lazy, DaskCollection, Generic[T_co]):
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

    @classmethod
    def _of_task(cls, task: Task, length: int | None) -> Delayed[Any]:
        return Delayed(task, length)

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
        timeout: float | None = None,
        retries: int | None = None,
        cache: str | PathLike[str] | bool | None = None,
    ) -> T_co:
        """Run the graph and return this value; options as in :func:`tarry.compute`."""
        from tarry._compute import checked_retries, run_graph

        _, values, failure = run_graph(
            (self,), scheduler, num_workers, progress, optimize_graph, timeout,
            checked_retries(retries), cache=cache,
        )  # fmt: skip
        if failure is not None:
            release_own_frames(failure)  # they would keep the run's values alive
            raise failure  # from here: the traceback shows one tarry frame
        result: T_co = values[self._task.key]
        return result

    def persist(
        self,
        *,
        scheduler: str | Executor | None = None,
        num_workers: int | None = None,
        optimize_graph: bool = True,
        progress: bool | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> Delayed[T_co]:
        """Run the graph now and return a ``Delayed`` that holds the value
        (on Ray and Dask: the cluster holds it, and this returns at once).

        Options as in :func:`tarry.persist`.
        """
        result: Delayed[T_co] = persist(
            self,
            scheduler=scheduler,
            num_workers=num_workers,
            optimize_graph=optimize_graph,
            progress=progress,
            timeout=timeout,
            retries=retries,
        )[0]
        return result

    def visualize(
        self,
        filename: str | os.PathLike[str] | None = "mydask",  # draw.DEFAULT_FILENAME, as dask
        format: str | None = None,
        **options: Any,
    ) -> Shown:
        """Draw this value's task graph with Graphviz; options as in :func:`tarry.visualize`.

        Returns an image that Jupyter shows inline, and writes it to ``filename``: by
        default ``mydask.png`` in the current folder, as dask does; None writes no file.

        Examples
        --------
        >>> from tarry import delayed
        >>> picture = delayed(abs)(-1).visualize(format="dot", filename=None)
        >>> picture.data.startswith("digraph tarry {")
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
    so ``x.method(...)`` costs one task and no wasted key hashing; that task
    has the options of the :func:`tarry.annotate` block the attribute was
    read in, wherever it is made.
    """

    __slots__ = ("_attr", "_block", "_owner")

    _attr: str
    _block: TaskOptions | None
    _owner: Delayed[Any]

    def __init__(self, owner: Delayed[Any], attr: str) -> None:
        _set_length(self, None)
        _set(self, "_owner", owner)
        _set(self, "_attr", attr)
        _set(self, "_block", current_options())

    @property  # type: ignore[override,unused-ignore]
    def _task(self) -> Task:  # type: ignore[override]
        try:
            task: Task = _get_task(self)
        except AttributeError:
            block = self._block
            options = None if block is None else block._asdict()
            task = _make_task(
                getattr, (self._owner, self._attr), None, "getattr", True, options=options
            )
            _set_task(self, task)
        return task

    def __call__(self, *args: Any, **kwargs: Any) -> Delayed[Any]:
        pure = kwargs.pop("pure", None)
        key = kwargs.pop("dask_key_name", None)
        if key is not None:
            check_key(key, "dask_key_name")
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


def persist(
    *objs: Any,
    scheduler: str | Executor | None = None,
    num_workers: int | None = None,
    optimize_graph: bool = True,
    progress: bool | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    traverse: bool = True,
) -> tuple[Any, ...]:
    """Compute lazy values now and keep them as lazy values with the same keys.

    Later computes that use them run none of the work again. Takes the same
    options as :func:`tarry.compute`.

    Where the results are kept depends on the scheduler. On the local ones
    (``"sync"``, ``"threads"``, ``"processes"``, an Executor) persist waits
    for the values and keeps them in this process. On ``"ray"`` and
    ``"dask"`` they stay in the cluster, as with ``client.persist``: persist
    hands the graph to the cluster and returns at once, each ``Delayed``
    holding the engine's handle (an ``ObjectRef``, a ``distributed.Future``).
    A later compute on the same cluster uses them there; a compute on
    another scheduler fetches each once before its tasks start, since they
    run where the cluster's memory cannot be read; dropping the ``Delayed``
    releases the data in the cluster. A persisted task that fails raises
    its error in the compute that needs its value. ``timeout`` makes persist
    on a cluster wait (without fetching anything) until the values are
    computed, and raise :class:`TimeoutError`, or the first task error, as
    a compute would; ``retries`` are the cluster's retries of its tasks.
    ``traverse=False``, as in :func:`tarry.compute`: lazy values inside lists,
    dicts and other containers given directly are left as they are.

    Examples
    --------
    >>> from tarry import delayed, persist
    >>> from operator import add
    >>> (kept,) = persist(delayed(tuple)([add, 1, 2]), scheduler="sync")
    >>> kept.compute(scheduler="sync") == (add, 1, 2)  # a value, never run as a task
    True
    """
    from tarry._compute import keep  # the front end sits above the lazy values

    packed, kept = keep(
        objs, scheduler, num_workers, progress, optimize_graph, timeout, retries, traverse
    )
    lengths = {o.key: o._length for o in objs if isinstance(o, Delayed)}
    held: dict[str, Delayed[Any]] = {k: Delayed(t, lengths.get(k)) for k, t in kept.items()}
    return tuple(resolve(p, held) for p in packed)


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
