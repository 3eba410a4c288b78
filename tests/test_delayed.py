"""The lazy proxy: wrapping, calling, operators, attributes and their errors."""

from __future__ import annotations

import dataclasses
import operator
import types
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

import pytest

import tarry
from tarry import Delayed, DelayedFunction, compute, delayed


def inc(x: int) -> int:
    """Add one."""
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def run(obj: Any) -> Any:
    return compute(obj, scheduler="sync")[0]


# -- wrapping ------------------------------------------------------------------


def test_delayed_function_keeps_identity_and_runs_nothing() -> None:
    calls: list[int] = []

    def record(x: int) -> int:
        """Doc."""
        calls.append(x)
        return x

    lazy = delayed(record)
    assert isinstance(lazy, DelayedFunction)
    assert lazy.__name__ == "record"
    assert lazy.__doc__ == "Doc."
    assert lazy.__wrapped__ is record
    value = lazy(3)
    assert isinstance(value, Delayed)
    assert calls == []
    assert run(value) == 3
    assert calls == [3]


def test_decorator_forms() -> None:
    @delayed
    def plain(x: int) -> int:
        return x * 2

    @delayed(pure=True)
    def pure(x: int) -> int:
        return x * 3

    @delayed(nout=2)
    def pair(x: int) -> tuple[int, int]:
        return x, -x

    assert run(plain(2)) == 4
    assert pure(2).key == pure(2).key
    assert plain(2).key != plain(2).key
    a, b = pair(5)
    assert run(a) == 5
    assert run(b) == -5


def test_methods_classmethods_staticmethods() -> None:
    class Thing:
        factor = 10

        def __init__(self, base: int) -> None:
            self.base = base

        @delayed
        def method(self, x: int) -> int:
            return self.base + x

        @delayed
        @classmethod
        def cls_method(cls, x: int) -> int:
            return cls.factor * x

        @delayed
        @staticmethod
        def static(x: int) -> int:
            return -x

    thing = Thing(100)
    assert run(thing.method(1)) == 101
    assert run(Thing.cls_method(2)) == 20
    assert run(thing.cls_method(3)) == 30
    assert run(Thing.static(4)) == -4
    assert run(thing.static(5)) == -5
    assert Thing.method(thing, 2).key.startswith("method-")


def test_bound_method_keeps_its_instance() -> None:
    items: list[int] = []
    lazy_append = delayed(items.append)
    run(lazy_append(7))
    assert items == [7]


def test_value_leaf() -> None:
    leaf = delayed(41)
    assert run(leaf + 1) == 42
    assert delayed(5, name="five").key == "five"
    assert run(delayed([1, delayed(2)])) == [1, 2]


def test_delayed_of_delayed_returns_it_or_explains() -> None:
    x = delayed(1)
    assert delayed(x) is x
    with pytest.raises(TypeError, match="already lazy"):
        delayed(x, name="other")
    with pytest.raises(TypeError, match="already lazy"):
        delayed(x, nout=2)


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_invalid_nout_raises_at_wrap_time(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="nout"):
        delayed(inc, nout=bad)
    with pytest.raises((TypeError, ValueError), match="nout"):
        delayed(nout=bad)


# -- arguments ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Point:
    x: Any
    y: Any
    z: int = dataclasses.field(default=0, init=False)


Pair = namedtuple("Pair", "a b")


def test_lazy_values_inside_containers_are_resolved() -> None:
    one, two = delayed(1), delayed(2)
    identity = delayed(lambda v: v)
    assert run(identity([one, (two, 3)])) == [1, (2, 3)]
    assert run(identity({one, 5})) == {1, 5}
    assert run(identity(frozenset({two}))) == frozenset({2})
    assert run(identity({one: two, "k": [one]})) == {1: 2, "k": [1]}
    assert run(identity(Point(one, [two]))) == Point(1, [2])
    assert run(identity(Pair(one, b=two))) == Pair(1, 2)
    assert run(identity(slice(one, two))) == slice(1, 2)


def test_generators_are_materialised_and_rerunnable() -> None:
    total = delayed(sum)(inc_lazy(i) for i in range(4))
    assert run(total) == 10
    assert run(total) == 10  # a second run sees a fresh iterator


def inc_lazy(i: int) -> Delayed[int]:
    return delayed(inc)(i)


def test_keyword_arguments_may_be_lazy() -> None:
    def power(base: int, *, exp: int) -> int:
        return int(base**exp)

    assert run(delayed(power)(delayed(2), exp=delayed(10))) == 1024


def test_traverse_false_passes_containers_untouched() -> None:
    inner = delayed(1)
    seen = run(delayed(lambda v: v, traverse=False)([inner]))
    assert seen[0] is inner
    assert run(delayed(inc, traverse=False)(inner)) == 2  # a lazy argument itself still resolves


def test_open_file_is_not_consumed_by_traversal(tmp_path: Any) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("a\nb\n")
    with path.open() as handle:
        out = run(delayed(list)(handle))
    assert out == ["a\n", "b\n"]


def test_task_object_given_as_data_is_not_run() -> None:
    task = delayed(5)._task
    assert run(delayed(lambda t: t)(task)) is task


# -- per-call options --------------------------------------------------------------


def test_dask_compatible_call_keywords() -> None:
    lazy = delayed(add)
    assert lazy(1, 2, dask_key_name="my-key").key == "my-key"
    assert lazy(1, 2, pure=True).key == lazy(1, 2, pure=True).key
    assert lazy(1, 2).key != lazy(1, 2).key


def test_user_keywords_named_pure_or_dask_key_name_reach_the_function() -> None:
    def takes_pure(x: int, pure: bool = False, dask_key_name: str = "") -> tuple[bool, str]:
        return pure, dask_key_name

    lazy = delayed(takes_pure)
    value = lazy(1, pure=True, dask_key_name="mine")
    assert run(value) == (True, "mine")
    assert value.key != "mine"


def test_options_never_collide() -> None:
    def takes_pure(x: int, pure: bool = False) -> bool:
        return pure

    lazy = delayed(takes_pure)
    value = lazy.options(key="exact", pure=True)(1, pure=True)
    assert value.key == "exact"
    assert run(value) is True
    assert lazy.options(pure=True)(1).key == lazy.options(pure=True)(1).key
    assert lazy.options(name="renamed")(1).key.startswith("renamed-")
    a, b = delayed(divmod).options(nout=2)(7, 2)
    assert run(a) == 3
    assert run(b) == 1


def test_non_string_key_is_rejected() -> None:
    with pytest.raises(TypeError, match="key must be a str"):
        delayed(inc)(1, dask_key_name=3)


#: every way to give a key or a name, each with something that cannot name a task
#: (typed Any: type checkers would refuse them, users without one would not)
SEVEN: Any = 7
A_LIST: Any = ["a"]
BAD_NAMES: dict[str, Any] = {
    "value-name-int": lambda: delayed(5, name=SEVEN),
    "value-name-list": lambda: delayed(5, name=A_LIST),
    "value-name-empty": lambda: delayed(5, name=""),
    "function-name-int": lambda: delayed(inc, name=SEVEN),
    "function-name-empty": lambda: delayed(inc, name=""),
    "decorator-name-list": lambda: delayed(name=A_LIST),
    "options-key-int": lambda: delayed(inc).options(key=SEVEN),
    "options-key-empty": lambda: delayed(inc).options(key=""),
    "options-name-list": lambda: delayed(inc).options(name=A_LIST),
    "dask-key-name-empty": lambda: delayed(inc)(1, dask_key_name=""),
    "dask-key-name-tuple": lambda: delayed(inc)(1, dask_key_name=("x", 0)),
    "method-dask-key-name-empty": lambda: delayed([1]).count(1, dask_key_name=""),
}


@pytest.mark.parametrize("build", list(BAD_NAMES.values()), ids=list(BAD_NAMES))
def test_a_key_or_name_that_is_not_a_non_empty_str_fails_when_built(build: Any) -> None:
    # one error for a wrong type and for an empty str: both TypeError and ValueError
    with pytest.raises(TypeError, match="cannot name a task: a task key must be a str") as info:
        build()
    assert isinstance(info.value, ValueError)
    assert "=" in str(info.value).split(" cannot name")[0]  # names the option given


# -- the Delayed object ------------------------------------------------------------


def test_key_repr_hash() -> None:
    value = delayed(inc)(1)
    assert value.key.startswith("inc-")
    assert repr(value) == f"Delayed('{value.key}')"
    assert hash(value) == hash(value.key)
    assert value in {value}


def test_immutable() -> None:
    value = delayed([1, 2])
    with pytest.raises(TypeError, match="immutable"):
        value.x = 1
    with pytest.raises(TypeError, match="immutable"):
        value[0] = 1
    with pytest.raises(TypeError, match="immutable"):
        del value[0]
    with pytest.raises(TypeError, match="immutable"):
        del value.x


def test_graph_is_a_read_only_mapping_of_everything_needed() -> None:
    x = delayed(inc)(1)
    y = delayed(inc)(2)
    z = delayed(add)(x, y)
    graph = z.graph
    assert len(graph) == 3
    assert set(graph) == {x.key, y.key, z.key}
    assert graph[z.key].deps == (x._task, y._task)
    with pytest.raises(TypeError):
        graph["new"] = graph[z.key]  # type: ignore[index]


_BINARY = [
    (operator.add, 7, 3), (operator.sub, 7, 3), (operator.mul, 7, 3),
    (operator.truediv, 7, 2), (operator.floordiv, 7, 2), (operator.mod, 7, 3),
    (operator.pow, 2, 5), (operator.lshift, 1, 4), (operator.rshift, 64, 2),
    (operator.and_, 6, 3), (operator.or_, 6, 3), (operator.xor, 6, 3),
    (operator.lt, 1, 2), (operator.le, 2, 2), (operator.eq, 2, 2),
    (operator.ne, 1, 2), (operator.gt, 3, 2), (operator.ge, 1, 2), (divmod, 7, 2),
]  # fmt: skip


@pytest.mark.parametrize(("op", "a", "b"), _BINARY)
def test_binary_operators_forward_and_reflected(op: Any, a: int, b: int) -> None:
    expected = op(a, b)
    assert run(op(delayed(a), b)) == expected
    assert run(op(delayed(a), delayed(b))) == expected
    if op not in (operator.lt, operator.le, operator.eq, operator.ne, operator.gt, operator.ge):
        assert run(op(a, delayed(b))) == expected


@pytest.mark.parametrize(
    ("op", "a"), [(operator.neg, 3), (operator.pos, -3), (operator.invert, 5), (abs, -4)]
)
def test_unary_operators(op: Any, a: int) -> None:
    assert run(op(delayed(a))) == op(a)


def test_matmul_forward_and_reflected() -> None:
    class Mat:
        def __init__(self, v: int) -> None:
            self.v = v

        def __matmul__(self, other: Mat) -> int:
            return self.v * other.v * 10

    assert run(delayed(Mat(2)) @ Mat(3)) == 60
    assert run(Mat(2) @ delayed(Mat(3))) == 60


def test_reflected_comparison_against_plain_value() -> None:
    assert run(delayed(2) > 1) is True
    assert run(delayed(5) == 5) is True


def test_operators_build_pure_keys() -> None:
    x = delayed(inc)(1)
    assert (x + 1).key == (x + 1).key
    assert (x + 1).key != (x + 2).key
    assert x[0].key == x[0].key
    assert x.real.key == x.real.key
    assert len(compute(x + 1, x + 1, scheduler="sync")) == 2


def test_getitem_with_lazy_slice_bounds() -> None:
    data: Delayed[list[int]] = delayed(list)(range(10))
    assert run(data[delayed(2) : delayed(8) : 3]) == [2, 5]
    assert run(data[::2]) == [0, 2, 4, 6, 8]
    assert run(data[delayed(3)]) == 3


def test_attribute_access_and_method_call_is_one_task() -> None:
    value = delayed(complex)(3, 4)
    assert run(value.real) == 3.0
    text = delayed(str)("a-b")
    parts = text.split("-")
    assert run(parts) == ["a", "b"]
    graph = parts.graph
    assert len(graph) == 2  # str(...) and the split call: no separate getattr task
    assert graph[parts.key].name == "split"


def test_private_attributes_are_not_lazy() -> None:
    with pytest.raises(AttributeError):
        _ = delayed(1)._private


def test_calling_a_delayed_callable() -> None:
    func = delayed(lambda a, b=0: a * 10 + b)
    assert run(func(1, b=delayed(2))) == 12


def test_unknown_length_errors_say_what_to_do() -> None:
    value = delayed(inc)(1)
    with pytest.raises(TypeError, match="nout="):
        len(value)
    with pytest.raises(TypeError, match="nout="):
        iter(value)
    with pytest.raises(TypeError, match="nout="):
        _a, _b = value
    with pytest.raises(TypeError, match=r"compute\(\)"):
        bool(value)


def test_nout_length_iteration_unpacking() -> None:
    triple = delayed(lambda: (1, 2, 3), nout=3)()
    assert len(triple) == 3
    assert [run(part) for part in triple] == [1, 2, 3]
    assert len(delayed((1, 2), nout=2)) == 2
    empty = delayed(tuple, nout=0)()
    assert list(empty) == []


def test_pickle_roundtrip_keeps_key() -> None:
    import pickle

    value = delayed(inc)(delayed(1))
    again = pickle.loads(pickle.dumps(value))
    assert again.key == value.key
    assert run(again) == 2
    lazy = pickle.loads(pickle.dumps(delayed(inc, nout=None)))
    assert run(lazy(1)) == 2


def test_iterating_lazy_generator_of_many_items() -> None:
    def gen() -> Iterator[Delayed[int]]:
        for i in range(3):
            yield delayed(i)

    assert run(delayed(list)(gen())) == [0, 1, 2]


def test_public_names() -> None:
    assert set(tarry.__all__) >= {"delayed", "compute", "persist", "Delayed", "config"}


# -- semantics on par with dask.delayed, on every local scheduler -------------------

LOCAL = [
    pytest.param("sync"),
    pytest.param("threads"),
    pytest.param("processes", marks=pytest.mark.processes),
]


def apply_each(func: Any, items: list[int]) -> list[int]:
    return [func(x) for x in items]


def call_inside(mapping: dict[str, Any]) -> Any:
    return mapping["f"][0](1)


class Scale:
    """A callable object with an attribute, as a model would be."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return x * self.factor


class Maker:
    base = 3

    @classmethod
    def make(cls, x: int) -> int:
        return cls.base * x


@pytest.mark.parametrize("scheduler", LOCAL)
def test_a_lazy_function_passed_as_an_argument_reaches_the_task_as_the_plain_function(
    scheduler: str,
) -> None:
    assert compute(delayed(apply_each)(delayed(inc), [1, 2]), scheduler=scheduler) == ([2, 3],)
    inside = delayed(call_inside)({"f": [delayed(inc)]})
    assert compute(inside, scheduler=scheduler) == (2,)
    model = delayed(Scale(10))
    assert compute(delayed(apply_each)(model, [1, 2]), scheduler=scheduler) == ([10, 20],)


@pytest.mark.parametrize("scheduler", LOCAL)
def test_delayed_callable_object_is_a_lazy_leaf(scheduler: str) -> None:
    scale = Scale(4)
    lazy = delayed(scale)
    assert isinstance(lazy, Delayed)
    assert isinstance(lazy.factor, Delayed)  # lazy, not an eager copy of the attribute
    assert compute(lazy.factor, lazy(2), scheduler=scheduler) == (4, 8)
    (value,) = compute(lazy, scheduler=scheduler)
    assert isinstance(value, Scale)
    assert value.factor == 4


@pytest.mark.parametrize("scheduler", LOCAL)
def test_delayed_class_calls_its_classmethods_in_tasks(scheduler: str) -> None:
    lazy = delayed(Maker)
    assert compute(lazy.make(2), lazy.base, scheduler=scheduler) == (6, 3)
    assert run(lazy) is Maker


def test_delayed_function_computes_to_the_function_and_keeps_its_attributes() -> None:
    lazy = delayed(inc)
    assert run(lazy) is inc
    assert lazy.compute(scheduler="sync") is inc
    assert (lazy.__name__, lazy.__doc__, lazy.__wrapped__) == ("inc", "Add one.", inc)
    assert delayed(inc, pure=True).key == delayed(inc, pure=True).key
    assert delayed(inc).key != delayed(inc).key


def test_decorated_methods_bind_like_dask_ones() -> None:
    class Box:
        def __init__(self, base: int) -> None:
            self.base = base

        @delayed
        def plus(self, x: int) -> int:
            return self.base + x

    box = Box(100)
    assert isinstance(box.plus, types.MethodType)  # a bound method, as in dask
    assert run(box.plus(1)) == 101
    assert run(Box.plus(box, 2)) == 102


@pytest.mark.parametrize("scheduler", LOCAL)
def test_building_never_asks_an_argument_for_its_truth_or_equality(scheduler: str) -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")

    class Touchy:
        def __eq__(self, other: object) -> bool:
            raise AssertionError("__eq__ called")

        def __bool__(self) -> bool:
            raise AssertionError("__bool__ called")

        __hash__ = object.__hash__

    def size(obj: Any, items: list[int]) -> int:
        return len(items) + (len(obj) if hasattr(obj, "__len__") else 0)

    one = delayed(inc)(0)
    for obj in (np.arange(3), pd.DataFrame({"a": [1, 2, 3]}), Touchy()):
        lazy = delayed(size)(obj, [one, 2])
        expected = 2 + (3 if not isinstance(obj, Touchy) else 0)
        assert compute(lazy, scheduler=scheduler) == (expected,)


@dataclasses.dataclass
class WithLateField:
    a: Any
    b: int = dataclasses.field(init=False)


def read_a(obj: dict[str, WithLateField]) -> tuple[int, bool]:
    return obj["data"].a, hasattr(obj["data"], "b")


@pytest.mark.parametrize("scheduler", LOCAL)
def test_dataclass_with_an_unset_init_false_field_builds_and_computes(scheduler: str) -> None:
    lazy = delayed(read_a)({"data": WithLateField(a=delayed(inc)(2))})
    assert compute(lazy, scheduler=scheduler) == ((3, False),)
    late = WithLateField(a=delayed(inc)(2))
    late.b = 7
    (rebuilt,) = compute(late, scheduler=scheduler)
    assert (rebuilt.a, rebuilt.b) == (3, 7)


def test_config_pure_sets_the_default_for_functions_values_and_methods() -> None:
    lazy_add = delayed(add)
    data = delayed([1, 2, 3])
    with tarry.config.set(pure=True):
        assert lazy_add(1, 2).key == lazy_add(1, 2).key
        assert delayed(1).key == delayed(1).key
        assert data.index(1).key == data.index(1).key
        assert data.index(1, pure=False).key != data.index(1, pure=False).key
        assert delayed(add, pure=False)(1, 2).key != delayed(add, pure=False)(1, 2).key
    assert lazy_add(1, 2).key != lazy_add(1, 2).key
    assert delayed(add, pure=True)(1, 2).key == delayed(add, pure=True)(1, 2).key
    with pytest.raises(TypeError, match="pure must be True or False"):
        tarry.config.set(pure="yes")


def test_dask_names_for_graph_and_key() -> None:
    x = delayed(inc)(1)
    y = delayed(add)(x, 2)
    assert x.key in y.dask
    assert set(y.dask) == set(y.graph)  # the same keys; dask's tasks where dask is installed
    assert y._key == y.key


def test_nout_true_is_a_value_error_as_in_dask() -> None:
    with pytest.raises(ValueError, match="nout"):
        delayed(add, nout=True)


def test_misspelt_visualise_warns_and_stays_lazy() -> None:
    with pytest.warns(UserWarning, match="Perhaps you meant `visualize`"):
        attr = delayed(inc)(1).visualise
    assert isinstance(attr, Delayed)
