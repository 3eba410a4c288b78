"""Content tokens: the same hex token for the same content, in every process.

The graph (:mod:`tarry._graph`) uses :func:`tokenize` to tell whether two
tasks under one key are the same call, and pure keys are built from it.
Graph types describe themselves to it through a ``__tarry_token__()``
method returning plain data.

A token must differ whenever the result can (or a task silently gets
another's result), so it is at least as fine as ``dask.base.tokenize`` and
honours its ``__dask_tokenize__``: a function counts by code, defaults,
closure and the globals it reads; an array by dtype, shape, memory order and
bytes; pandas objects by dtypes, values, index and names. As in dask, a
dict's insertion order does not count; nor, unlike dask, does where a
function is defined. What cannot be described gets a random token; no user
``__eq__`` or ``__bool__`` is ever called.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import pickle
import site
import sys
import sysconfig
import types
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["tokenize"]


def tokenize(*parts: Any) -> str:
    """A deterministic hex token for the content of ``parts``.

    Equal content gives equal tokens in every process. Objects that cannot be
    described get a random token, so they never collide with anything.

    Examples
    --------
    >>> tokenize(1, "a", [2.5, None]) == tokenize(1, "a", [2.5, None])
    True
    >>> tokenize(1) == tokenize(1.0), tokenize((1, 2)) == tokenize([1, 2])
    (False, False)
    """
    describer = _Describer()
    try:
        for part in parts:
            describer.add(part)
    except Exception:  # e.g. RecursionError on absurdly deep nesting
        return uuid.uuid4().hex
    text = "\x1f".join(describer.out).encode(errors="surrogatepass")
    return hashlib.blake2b(text, digest_size=16).hexdigest()


_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: the type was made by a class statement
# Class attributes that say nothing about behaviour and cannot be pickled.
_CLASS_SKIP = frozenset({"__dict__", "__weakref__", "_abc_impl"})


class _Describer:
    """Writes a flat, deterministic description of objects into ``out``.

    ``known`` maps a function, class or array met before in this call to its
    text: a back reference (a recursive function must not recurse forever)
    or an array's digest (hashed once). It keeps them alive, so no id is
    reused. ``active`` numbers the lists and dicts being described.
    """

    __slots__ = ("active", "known", "out")

    def __init__(self) -> None:
        self.out: list[str] = []
        self.known: dict[int, tuple[str, object]] = {}
        self.active: dict[int, int] = {}

    def add(self, obj: Any) -> None:
        """Append the description of ``obj``."""
        kind = type(obj)
        # Dispatch on the type's id: a lookup by type could call a
        # metaclass's __eq__.
        prefix = _SCALARS.get(id(kind))
        if prefix is not None:
            self.out.append(prefix + repr(obj))
            return
        handler = _HANDLERS.get(id(kind))
        if handler is not None:
            handler(self, obj)
        elif not self.special(obj):
            self.out.append(self.pickled(obj))

    def text(self, obj: Any, known_only: bool = False) -> str | None:
        """``obj``'s description as one string; None if ``known_only`` and it would pickle."""
        saved, self.out = self.out, []
        try:
            if not known_only or id(type(obj)) in _HANDLERS:
                self.add(obj)
            elif not self.special(obj):
                return None
            return "\x1f".join(self.out)
        finally:
            self.out = saved

    def again(self, obj: object) -> bool:
        """Append ``obj``'s known text if it was met before; else number it."""
        entry = self.known.get(id(obj))
        if entry is not None:
            self.out.append(entry[0])
            return True
        self.known[id(obj)] = (f"seen:{len(self.known)}", obj)
        return False

    def enter(self, obj: object) -> bool:
        """Open a list or dict; True (and a back reference) if it is open already."""
        depth = self.active.get(id(obj))
        if depth is not None:
            self.out.append(f"cycle:{depth}")
            return True
        self.active[id(obj)] = len(self.active)
        return False

    def seq(self, obj: tuple[Any, ...] | list[Any]) -> None:
        """Lists and tuples: their items in order."""
        is_list = type(obj) is list
        if is_list and self.enter(obj):  # only a mutable container can hold itself
            return
        out, add = self.out, self.add
        out.append("list[" if is_list else "tuple[")
        for item in obj:
            prefix = _SCALARS.get(id(type(item)))
            if prefix is not None:  # inlined: most arguments are small scalars
                out.append(prefix + repr(item))
            else:
                add(item)
        out.append("]")
        if is_list:
            del self.active[id(obj)]

    def mapping(self, obj: dict[Any, Any] | types.MappingProxyType[Any, Any]) -> None:
        """Dicts: items sorted by key, so insertion order does not count (as in dask)."""
        if self.enter(obj):
            return
        items = list(obj.items())
        keys = [_key_text(key) for key, _ in items]
        self.out.append("dict{")
        for i in sorted(range(len(items)), key=keys.__getitem__):
            self.out.append(keys[i])
            self.add(items[i][1])
        self.out.append("}")
        del self.active[id(obj)]

    def bag(self, obj: set[Any] | frozenset[Any]) -> None:
        """Sets: items sorted by description, as iteration order varies by process."""
        self.out.append(f"{type(obj).__name__}{{")
        self.out.extend(sorted(_key_text(item) for item in obj))
        self.out.append("}")

    def function(self, func: types.FunctionType) -> None:
        """Code, defaults, closure, attributes and the globals the code reads."""
        if self.again(func):
            return
        code, names = _code(func.__code__)
        self.out.append(f"func:{func.__module__}.{func.__qualname__}:{code}(")
        self.state(func)
        module = func.__module__
        # Installed libraries' globals are taken as fixed: following them
        # would walk much of numpy or pandas at every pure call.
        if not (isinstance(module, str) and _in_library(module)):
            namespace = func.__globals__
            for name in names:
                if name in namespace:
                    self.out.append(name)
                    self.add(namespace[name])
        self.out.append(")")

    def state(self, func: types.FunctionType) -> None:
        """What a function holds besides its code: defaults, closure, attributes."""
        self.add(func.__defaults__)
        self.add(func.__kwdefaults__)
        for cell in func.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # a variable not bound yet
                self.out.append("empty-cell")
            else:
                self.add(contents)
        if func.__dict__:  # attributes set on the function (functools.wraps: __wrapped__)
            self.add(func.__dict__)

    def type_(self, cls: type) -> None:
        """A class its module and name lead to is that name; any other, its contents."""
        name = f"type:{cls.__module__}.{cls.__qualname__}"
        if _importable(cls):
            self.out.append(name)
            return
        self.contents(cls, _CLASS_SKIP)

    def contents(self, cls: type, skip: frozenset[str]) -> None:
        """A class by its bases and attributes; those in ``skip`` by name only."""
        if self.again(cls):
            return
        self.out.append(f"type:{cls.__module__}.{cls.__qualname__}(")
        self.add(cls.__bases__)
        namespace = vars(cls)
        for attr in sorted(namespace):
            self.out.append(repr(attr))
            if attr not in skip:
                self.add(namespace[attr])
        self.out.append(")")

    def special(self, obj: Any) -> bool:
        """Describe ``obj`` if it is of a kind known here; False leaves it to pickle."""
        kind, out = type(obj), self.out
        # Hooks are looked up on the type: an instance's __getattr__ could
        # answer anything (tarry's own Delayed builds a lazy attribute).
        if getattr(kind, "__tarry_token__", None) is not None:
            out.append(f"{kind.__module__}.{kind.__qualname__}:")
            self.add(obj.__tarry_token__())
        elif getattr(kind, "__dask_tokenize__", None) is not None and not isinstance(obj, type):
            out.append(f"dask:{kind.__module__}.{kind.__qualname__}:")
            self.add(obj.__dask_tokenize__())
        elif isinstance(obj, type):
            self.type_(obj)
        elif isinstance(obj, types.ModuleType):  # by name: never hash a module's contents
            out.append(f"module:{obj.__name__}")
        elif (np := sys.modules.get("numpy")) and isinstance(obj, np.ndarray | np.generic):
            self.numpy(obj, np)
        elif np and isinstance(obj, np.dtype):
            out.append(f"dtype:{obj!r}")
        elif (pd := sys.modules.get("pandas")) and isinstance(
            obj, pd.Series | pd.DataFrame | pd.Index | pd.api.extensions.ExtensionArray
        ):
            self.pandas(obj, pd)
        elif dataclasses.is_dataclass(obj):
            self.dataclass(obj)
        elif kind is object:  # a bare sentinel: only its identity means anything
            out.append(f"random:{uuid.uuid4().hex}")
        elif not kind.__flags__ & _HEAPTYPE and hasattr(obj, "__wrapped__"):
            # a C wrapper (functools.lru_cache) pickles by name alone
            out.append(f"wrapper:{kind.__module__}.{kind.__qualname__}")
            self.add(obj.__wrapped__)
        else:
            return False
        return True

    def numpy(self, obj: Any, np: Any) -> None:
        """NumPy arrays and scalars: dtype, shape, memory order and bytes."""
        if isinstance(obj, np.generic):
            data = obj.item() if obj.dtype.hasobject else obj.tobytes().hex()
            self.out.append(f"npscalar:{obj.dtype!r}:")
            self.add(data)
            return
        if self.again(obj):  # an array met before, or an object array holding itself
            return
        kind, plain = type(obj), obj.view(np.ndarray)
        # Memory order counts (as in dask): bytes are hashed in "K" order,
        # which spares a copy of a Fortran-ordered array, and the axis order
        # tells a C array from an F array whose bytes happen to match.
        axes = [ax for ax in range(plain.ndim) if plain.shape[ax] > 1]
        axes.sort(key=lambda ax: -abs(plain.strides[ax]))
        head = f"ndarray:{kind.__module__}.{kind.__qualname__}:{obj.dtype!r}:{obj.shape}:{axes}"
        if obj.dtype.hasobject:  # pointers: describe the objects themselves
            text = f"{head}\x1f{self.text(obj.tolist())}"
        else:
            flat = plain.ravel(order="K")
            try:
                data = flat.view(np.uint8)
            except ValueError:  # items of size 0
                data = flat.tobytes()
            text = f"{head}:{hashlib.blake2b(data, digest_size=16).hexdigest()}"
            ma = sys.modules.get("numpy.ma")
            if ma is not None and isinstance(obj, ma.MaskedArray):
                text += f"\x1f{self.text((ma.getmaskarray(obj), obj.fill_value))}"
        self.known[id(obj)] = (text, obj)
        self.out.append(text)

    def pandas(self, obj: Any, pd: Any) -> None:
        """Frames, Series, indexes, arrays: dtypes, values, index, names."""
        self.out.append(f"pandas:{type(obj).__qualname__}(")
        if isinstance(obj, pd.DataFrame):
            self.add((obj.columns, obj.index, obj.attrs))
            for _, column in obj.items():
                self.values(column.array, pd)
        elif isinstance(obj, pd.Series):
            self.add((obj.name, obj.index, obj.attrs))
            self.values(obj.array, pd)
        elif isinstance(obj, pd.RangeIndex):
            self.add((obj.name, obj.start, obj.stop, obj.step))
        elif isinstance(obj, pd.MultiIndex):
            self.add((list(obj.names), list(obj.levels), list(obj.codes)))
        elif isinstance(obj, pd.Index):
            self.add(list(obj.names))
            self.values(obj.array, pd)
        else:
            self.values(obj, pd)
        self.out.append(")")

    def values(self, array: Any, pd: Any) -> None:
        """A pandas array: its dtype, then its values as NumPy arrays."""
        np, dtype, arrays = sys.modules["numpy"], array.dtype, pd.arrays
        if not isinstance(dtype, np.dtype):  # else the ndarray's text names it
            self.out.append(f"{type(dtype).__qualname__}:{dtype}:{dtype!r}")
        if isinstance(array, pd.Categorical):
            self.add((dtype.ordered, dtype.categories, array.codes))
        elif isinstance(array, arrays.IntegerArray | arrays.FloatingArray | arrays.BooleanArray):
            # Int64 and friends: data (zero where missing), then the mask
            zero = dtype.numpy_dtype.type(0)
            self.add(array.to_numpy(dtype=dtype.numpy_dtype, na_value=zero))
            self.add(np.asarray(array.isna()))
        elif isinstance(dtype, np.dtype) or type(dtype).__name__ in _NUMPY_DTYPES:
            self.add(np.asarray(array))
        else:
            ticks = getattr(array, "asi8", None)  # time zones and periods: int64 ticks
            self.add(ticks if ticks is not None else np.asarray(array, dtype=object))

    def dataclass(self, obj: Any) -> None:
        """A dataclass instance: class, parameters and every field, set or not."""
        kind = type(obj)
        # a field with init=False that was never set stands as dataclasses.MISSING
        missing = dataclasses.MISSING
        fields = [(f.name, getattr(obj, f.name, missing)) for f in dataclasses.fields(obj)]
        self.out.append("dataclass:")
        self.add((kind, repr(getattr(kind, "__dataclass_params__", None)), fields))

    def pickled(self, obj: Any) -> str:
        """A digest of ``obj``'s pickle, with the kinds known here described instead.

        Pickle alone stores a set in iteration order (which varies between
        processes), a function by name only, and fails on a local class.
        """
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=5)
        pickler.persistent_id = lambda item: (  # type: ignore[method-assign]
            None if item is obj or id(type(item)) in _PICKLE_OWN else self.text(item, True)
        )
        try:
            pickler.dump(obj)
        except Exception:  # not describable: a random token is honest
            return f"random:{uuid.uuid4().hex}"
        return f"pickle:{hashlib.blake2b(buffer.getbuffer(), digest_size=16).hexdigest()}"


def _key_text(obj: Any) -> str:
    """The description of a dict key or set item on its own, for sorting."""
    return f"str:{obj!r}" if type(obj) is str else str(_Describer().text(obj))


@functools.lru_cache(maxsize=4096)
def _code(code: types.CodeType) -> tuple[str, tuple[str, ...]]:
    """A digest of what ``code`` does, and the global names it and its inner code may read.

    Line numbers and file name are left out: the same code elsewhere computes
    the same thing. Code objects are immutable, so the answer is cached.
    """
    names = set(code.co_names)
    consts = []
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            digest, inner = _code(const)
            consts.append(digest)
            names.update(inner)
        else:
            consts.append(_key_text(const))
    signature = (
        code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags,
        code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars,
    )  # fmt: skip
    hashed = hashlib.blake2b(repr(signature).encode(), digest_size=16)
    for chunk in (code.co_code, code.co_exceptiontable, "\x1f".join(consts).encode()):
        hashed.update(len(chunk).to_bytes(8, "little"))
        hashed.update(chunk)
    return hashed.hexdigest(), tuple(sorted(names))


def _importable(cls: type) -> bool:
    """True when ``cls`` is what its module and qualified name lead to."""
    target: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        target = getattr(target, part, None)
    return target is cls


@functools.cache
def _in_library(module: str) -> bool:
    """True for tarry, the standard library and installed packages (not the user's code)."""
    if module.partition(".")[0] in {"tarry", *sys.stdlib_module_names}:
        return True
    path = getattr(sys.modules.get(module), "__file__", None)
    paths = sysconfig.get_paths()
    dirs = [paths["purelib"], paths["platlib"], *getattr(site, "getsitepackages", list)()]
    roots = tuple(os.path.join(os.path.realpath(d), "") for d in dirs)
    return isinstance(path, str) and os.path.realpath(path).startswith(roots)


def _builtin(self: _Describer, obj: types.BuiltinFunctionType) -> None:
    """A C function by name; a C method ([1].append) also by its object."""
    if obj.__self__ is None or isinstance(obj.__self__, types.ModuleType):
        self.out.append(f"builtin:{obj.__module__}.{obj.__qualname__}")
    else:
        self.out.append(f"builtin:{obj.__qualname__}:")
        self.add(obj.__self__)


def _parts(self: _Describer, obj: Any) -> None:
    """Kinds described by a label and a few parts (see ``_PARTS``)."""
    label, parts = _PARTS[id(type(obj))]
    self.out.append(f"{label}:")
    self.add(parts(obj))


_SCALARS = {
    id(kind): f"{kind.__name__}:"
    for kind in (type(None), bool, int, float, complex, str, bytes, range, type(...))
}
_DESCRIPTOR = ("descriptor", lambda d: (d.__name__, d.__objclass__))
_PARTS: dict[int, tuple[str, Callable[[Any], Any]]] = {
    id(slice): ("slice", lambda s: (s.start, s.stop, s.step)),
    id(types.MethodType): ("method", lambda m: (m.__self__, m.__func__)),
    id(types.MethodWrapperType): ("slot", lambda m: (m.__name__, m.__self__)),  # (1).__add__
    id(functools.partial): ("partial", lambda p: (p.func, p.args, p.keywords)),
    id(staticmethod): ("staticmethod", lambda m: m.__func__),
    id(classmethod): ("classmethod", lambda m: m.__func__),
    id(property): ("property", lambda p: (p.fget, p.fset, p.fdel)),
    id(types.CodeType): ("code", lambda c: _code(c)[0]),
    # str.upper, int.__add__, __slots__ members: by name and owning class
    id(types.MethodDescriptorType): _DESCRIPTOR,
    id(types.WrapperDescriptorType): _DESCRIPTOR,
    id(types.ClassMethodDescriptorType): _DESCRIPTOR,
    id(types.GetSetDescriptorType): _DESCRIPTOR,
    id(types.MemberDescriptorType): _DESCRIPTOR,
}
_HANDLERS: dict[int, Callable[[_Describer, Any], None]] = {
    **dict.fromkeys(_PARTS, _parts),
    id(list): _Describer.seq,
    id(tuple): _Describer.seq,
    id(dict): _Describer.mapping,
    id(types.MappingProxyType): _Describer.mapping,
    id(set): _Describer.bag,
    id(frozenset): _Describer.bag,
    id(types.FunctionType): _Describer.function,
    id(type): _Describer.type_,
    id(types.BuiltinFunctionType): _builtin,
}
# pandas' dtype of an array that wraps a NumPy array (renamed in pandas 2.1)
_NUMPY_DTYPES = frozenset({"NumpyEADtype", "PandasDtype"})
# What a pickle stores as well as the describer would: no detour needed.
_PICKLE_OWN = {*_SCALARS, id(list), id(tuple), id(dict)}
