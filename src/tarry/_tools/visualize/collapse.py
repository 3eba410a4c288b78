"""The graph as drawn: which tasks become one node of the picture.

A picture of a 100,000-task graph cannot show 100,000 ellipses, so tasks
are gathered into :class:`Node` objects in up to three stages, each a
single pass over nodes in walk order (inputs first):

1. :func:`task_nodes`: one node per task; with ``fuse`` (``optimize_graph=True``)
   a chain of calls whose outputs each feed only the next is one node.
2. :func:`collapsed`: nodes doing the same thing to the same groups of
   inputs become one group with a count (``inc ×10,000``), then chains
   of at least ``CHAIN_MIN`` groups that each feed only the next become
   one node (``+ → + → … → +``).
3. When that still leaves more than ``MAX_GROUPS`` nodes (a graph with no
   regular structure), one node per kind of step, whatever its inputs.

Every task stays in exactly one node (``Node.keys``), so colouring by the
last run can count the tasks behind each node.

Examples
--------
>>> from tarry import delayed
>>> from tarry._graph import walk
>>> total = delayed(sum)([delayed(abs)(i) for i in range(100)])
>>> tasks = list(walk([total._task]))
>>> [(node.steps, node.count) for node in collapsed(task_nodes(tasks, set(), fuse=False))]
[(['abs'], 100), (['sum'], 1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from tarry._build.labels import task_labels
from tarry._graph import Task

__all__ = ["CHAIN_MIN", "MAX_GROUPS", "Node", "collapsed", "task_nodes"]

#: a chain of at least this many groups is drawn as one node when collapsing.
#: A judgement: up to four nodes in a column read as easily as one, and
#: from five steps on a label is shortened and says the chain's length
#: (``STEPS_WRITTEN_OUT`` in :mod:`.dot`).
CHAIN_MIN: Final = 5
#: when collapsing still leaves more nodes than this, group by function alone.
#: Measured (Graphviz 2.43, 2-core machine): ``dot`` lays out 400 nodes of
#: no regular structure as SVG in 0.4 to 0.7 s, 500 in 0.7 to 0.8 s. A
#: judgement beyond that: more such nodes make a picture too dense to follow.
MAX_GROUPS: Final = 400


@dataclass(eq=False, slots=True)
class Node:
    """One drawn node: a task, a fused chain of tasks, or a group of alike ones.

    Examples
    --------
    >>> a = Node("a", ["inc"], ["inc"], False, ["a"], [])
    >>> a.absorb(Node("b", ["inc"], ["inc"], False, ["b"], [], target=True))
    >>> a.count, a.keys, a.target, a.shown
    (2, ['a', 'b'], True, ['inc'])
    """

    key: str  # the output's key (for a group: of its first member); gives the DOT id
    steps: list[str]  # coarse labels along the chain; one for a plain task
    shown: list[str] | None  # labels to show, when every member agrees on them
    literal: bool
    keys: list[str]  # every task this node stands for
    deps: list[int]  # indices of the nodes it reads from, distinct
    count: int = 1  # alike members side by side (collapsed)
    target: bool = False

    def absorb(self, other: Node) -> None:
        """Take ``other``'s tasks in as alike members, side by side with this node's."""
        self.count += other.count
        self.keys.extend(other.keys)
        self.target = self.target or other.target
        if self.shown is not None and self.shown != other.shown:
            self.shown = None  # members differ in detail ([0], [1]): show the coarse label


def task_nodes(tasks: Sequence[Task], targets: set[str], fuse: bool) -> list[Node]:
    """One node per task; with ``fuse``, linear chains of calls become one node.

    Parameters
    ----------
    tasks
        Every task of the graph, inputs before the tasks that read them.
    targets
        Keys of the requested outputs: drawn bold, and never hidden inside a chain.
    fuse
        Join a call to its only input when nothing else reads that input.

    Examples
    --------
    >>> from tarry import delayed
    >>> from tarry._graph import walk
    >>> x = delayed(abs)(delayed(abs)(-1))
    >>> [node.steps for node in task_nodes(list(walk([x._task])), {x.key}, fuse=True)]
    [['abs', 'abs']]
    """
    users: dict[str, int] = {}
    if fuse:
        for task in tasks:
            for dep in task.deps:
                users[dep.key] = users.get(dep.key, 0) + 1
    index: dict[str, int] = {}
    nodes: list[Node] = []
    for task in tasks:
        coarse, shown = task_labels(task)
        literal = task.func is None
        deps = task.deps
        if fuse and not literal and len(deps) == 1:
            only = deps[0].key
            node = nodes[index[only]]
            # the input's output must be needed here alone, and not asked for
            if users[only] == 1 and only not in targets and not node.literal:
                node.steps.append(coarse)
                assert node.shown is not None  # ungrouped nodes always carry their labels
                node.shown.append(shown)
                node.keys.append(task.key)
                node.key = task.key
                node.target = task.key in targets
                index[task.key] = index[only]
                continue
        index[task.key] = len(nodes)
        if len(deps) <= 1:  # the common case, without building a dict
            dep_ids = [index[d.key] for d in deps]
        else:
            dep_ids = list(dict.fromkeys([index[d.key] for d in deps]))
        nodes.append(
            Node(task.key, [coarse], [shown], literal, [task.key], dep_ids, 1, task.key in targets)
        )
    return nodes


def collapsed(nodes: list[Node]) -> list[Node]:
    """Group nodes doing the same thing to the same groups, in one pass (inputs first).

    Consumes ``nodes`` (as made by :func:`task_nodes`): the first member of each
    group becomes the group.

    Examples
    --------
    >>> a = Node("a", ["inc"], ["inc"], False, ["a"], [])
    >>> b = Node("b", ["inc"], ["inc"], False, ["b"], [])
    >>> c = Node("c", ["add"], ["add"], False, ["c"], [0, 1])
    >>> [(node.steps, node.count, node.deps) for node in collapsed([a, b, c])]
    [(['inc'], 2, []), (['add'], 1, [0])]
    """
    groups: list[Node] = []
    by_signature: dict[tuple[Any, ...], int] = {}
    group_of: list[int] = []
    for node in nodes:
        deps = node.deps
        if len(deps) == 1:
            dep_groups: tuple[int, ...] = (group_of[deps[0]],)
        elif deps:
            dep_groups = tuple(sorted({group_of[d] for d in deps}))
        else:
            dep_groups = ()
        steps = node.steps
        signature = (steps[0] if len(steps) == 1 else tuple(steps), node.literal, dep_groups)
        g = by_signature.get(signature)
        if g is None:
            g = by_signature[signature] = len(groups)
            node.deps = list(dep_groups)
            groups.append(node)
        else:
            groups[g].absorb(node)
        group_of.append(g)
    groups = _fuse_chains(groups)
    if len(groups) > MAX_GROUPS:
        groups = _group_by_label(groups)
    return groups


def _fuse_chains(groups: list[Node]) -> list[Node]:
    """Draw chains of at least ``CHAIN_MIN`` groups, each feeding only the next, as one node."""
    n = len(groups)
    successors = [0] * n
    for group in groups:
        for d in group.deps:
            successors[d] += 1
    previous = [-1] * n
    following = [-1] * n
    for g, group in enumerate(groups):
        if group.literal:
            continue
        for d in group.deps:
            before = groups[d]
            if (
                successors[d] == 1
                and before.count == group.count
                and not before.literal
                and not before.target
            ):
                previous[g] = d
                following[d] = g
                break
    new_id = list(range(n))
    chains: list[list[int]] = []
    for g in range(n):
        if previous[g] != -1:
            continue
        chain = [g]
        while following[chain[-1]] != -1:
            chain.append(following[chain[-1]])
        if len(chain) >= CHAIN_MIN:
            chains.append(chain)
    if not chains:
        return groups
    head_of: dict[int, int] = {}
    for chain in chains:
        for g in chain:
            head_of[g] = chain[0]
    order = [g for g in range(n) if head_of.get(g, g) == g]
    for position, g in enumerate(order):
        new_id[g] = position
    for g, head in head_of.items():
        new_id[g] = new_id[head]
    fused: list[Node] = []
    chain_of = {chain[0]: chain for chain in chains}
    for g in order:
        members = chain_of.get(g, [g])
        last = groups[members[-1]]
        steps = [step for m in members for step in groups[m].steps]
        shown_parts = [groups[m].shown for m in members]
        shown = None
        if all(p is not None for p in shown_parts):
            shown = [s for p in shown_parts for s in p or ()]
        inside = set(members)
        deps = list(
            dict.fromkeys(new_id[d] for m in members for d in groups[m].deps if d not in inside)
        )
        keys = [k for m in members for k in groups[m].keys]
        # a node not fused with others keeps what it is: a value stays a value
        fused.append(
            Node(last.key, steps, shown, last.literal, keys, deps, last.count, last.target)
        )
    return fused


def _group_by_label(groups: Sequence[Node]) -> list[Node]:
    """The coarsest summary: one node per kind of step, whatever its inputs."""
    by_label: dict[tuple[Any, ...], int] = {}
    new_id: list[int] = []
    merged: list[Node] = []
    for group in groups:
        signature = (tuple(group.steps), group.literal)
        m = by_label.get(signature)
        if m is None:
            m = by_label[signature] = len(merged)
            # shown None: members' detailed labels differ, or soon will
            merged.append(Node(group.key, list(group.steps), None, group.literal, [], [], 0))
        merged[m].absorb(group)
        new_id.append(m)
    inputs: list[dict[int, None]] = [{} for _ in merged]  # ordered sets
    for group, m in zip(groups, new_id, strict=True):
        inputs[m].update(dict.fromkeys(new_id[d] for d in group.deps))
    for node, found in zip(merged, inputs, strict=True):
        node.deps = list(found)
    return merged
