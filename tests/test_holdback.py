"""The hold-back policy on its own, over plain keys as the work."""

from __future__ import annotations

from tarry._schedule.holdback import HoldBack

#: a fold over three loads: merge_i = merge(merge_{i-1}, load_i)
FOLD = {
    "load0": [],
    "load1": [],
    "load2": [],
    "merge1": ["load0", "load1"],
    "merge2": ["merge1", "load2"],
}
#: a gather: one reader of three loads
GATHER = {"load0": [], "load1": [], "load2": [], "combine": ["load0", "load1", "load2"]}


def policy(reads: dict[str, list[str]], look_down: int = 0) -> HoldBack[str]:
    # keys stand for the work; interned strings keep one id per key
    return HoldBack(reads.__getitem__, lambda key: next(k for k in reads if k == key), look_down)


def test_a_result_whose_reader_waits_for_running_work_holds_roots() -> None:
    hold = policy(FOLD)
    hold.started("merge1")
    hold.park("load2", ["merge2"], have={"load0", "load1", "load2"})
    assert hold.parked == {"load2"}
    assert hold.holding()


def test_nothing_is_held_once_no_work_is_under_way() -> None:
    hold = policy(FOLD)
    hold.started("merge1")
    hold.park("load2", ["merge2"], have={"load2"})
    hold.stopped("merge1")
    assert not hold.holding()


def test_starting_the_reader_releases_its_parked_inputs() -> None:
    hold = policy(FOLD)
    hold.started("merge1")
    hold.park("load2", ["merge2"], have={"load2"})
    hold.started("merge2")
    assert hold.parked == set()


def test_a_gather_is_never_held_its_reader_waits_for_loads_not_started() -> None:
    hold = policy(GATHER)
    hold.started("load1")
    hold.park("load0", ["combine"], have={"load0"})
    assert not hold.holding()


def test_look_down_sees_work_under_way_beneath_a_waiting_input() -> None:
    reads = {**FOLD, "merge3": ["merge2", "load3"], "load3": []}
    have = {"merge1", "load3"}
    shallow, deep = policy(reads, look_down=0), policy(reads, look_down=2)
    for hold in (shallow, deep):
        hold.started("load2")  # merge2 waits for it; merge3 waits for merge2
        hold.park("load3", ["merge3"], have)
    assert shallow.parked == set()
    assert deep.parked == {"load3"}


def test_starting_work_parks_the_ready_inputs_of_readers_now_waiting_only_on_it() -> None:
    hold = policy(FOLD)
    hold.started("merge1")
    hold.park_inputs_of(["merge2"], have={"load2"})
    assert hold.parked == {"load2"}
