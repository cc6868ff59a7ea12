"""A deterministic DAG of Python steps for tests/ray/test_same_outputs.py.

``make_dag`` draws (seeded) a DAG whose every step needs 0 to 3 earlier steps; some also
get one of their upstream outputs through their input, by reference. Each step's output is
computed by ``compute`` from its input and its upstream outputs only: a hash-like integer
fold (a stable digest: never the builtin ``hash``, which differs between processes), shaped
as an integer, a list, a mapping or a text. ``expected`` computes every output without
counterpoint, in the DAG's order.

Ray workers import this module by its name (from the driver's ``sys.path``): the name is
unusual on purpose, since workers keep modules they imported for the whole session.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass

import counterpoint as cp

MASK = (1 << 61) - 1
SHAPES = ("int", "list", "dict", "text")
AGENTS = ("fold-sync", "fold-async")  # a plain function and a coroutine function
PID_EVENT = "worker-pid"


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    index: int
    needs: tuple[str, ...]
    salt: int
    shape: str
    agent: str
    via_ref: str | None  # an upstream step whose output the input also carries, by reference


def step_id(index: int) -> str:
    return f"s{index:04d}"


def make_dag(n: int, seed: int) -> list[Node]:
    """``n`` steps; step ``i`` needs 0-3 of the steps before it, mostly recent ones."""
    rng = random.Random(seed)
    nodes: list[Node] = []
    for i in range(n):
        k = min(i, rng.choice((0, 1, 1, 2, 2, 3, 3, 3)))
        if rng.random() < 0.15:  # now and then from anywhere before
            picks = rng.sample(range(i), k)
        else:
            picks = rng.sample(range(max(0, i - 30), i), k)
        needs = tuple(step_id(j) for j in sorted(picks))
        via_ref = rng.choice(needs) if needs and rng.random() < 0.3 else None
        nodes.append(
            Node(
                step_id(i),
                i,
                needs,
                rng.getrandbits(32),
                rng.choice(SHAPES),
                rng.choice(AGENTS),
                via_ref,
            )
        )
    return nodes


def step_input(node: Node) -> dict[str, object]:
    value: dict[str, object] = {"i": node.index, "salt": node.salt, "shape": node.shape}
    if node.via_ref is not None:
        value["ref"] = cp.ref(f"steps.{node.via_ref}.output")
        value["ref_from"] = node.via_ref
    return value


def digest(value: object) -> int:
    """A stable 61-bit digest of a JSON value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") & MASK


def compute(
    index: int, salt: int, shape: str, upstream: Mapping[str, object], via_ref: object = None
) -> object:
    acc = (salt * 0x9E3779B97F4A7C15 + index) & MASK
    for name in sorted(upstream):
        acc = ((acc ^ digest(upstream[name])) * 1099511628211 + len(name)) & MASK
    if via_ref is not None:
        acc = (acc + 31 * digest(via_ref)) & MASK
    if shape == "int":
        return acc
    if shape == "list":
        return [
            acc % 997,
            acc >> 40,
            len(upstream),
            [digest(upstream[k]) % 101 for k in sorted(upstream)],
        ]
    if shape == "dict":
        return {
            "value": acc,
            "from": sorted(upstream),
            "even": acc % 2 == 0,
            "ratio": (acc % 10007) / 10007,
            "nested": {"mod7": acc % 7, "none": None, "empty": []},
        }
    return f"{index}:{acc:x}"


def _output(ctx: cp.StepContext) -> object:
    spec = ctx.input
    assert isinstance(spec, dict), spec
    via_ref = None
    if "ref" in spec:
        via_ref = spec["ref"]
        if via_ref != ctx.upstream[spec["ref_from"]]:  # the reference, resolved, is that output
            raise cp.StepFailed(
                f"input ref {via_ref!r} is not the output of {spec['ref_from']}", retryable=False
            )
    return compute(int(spec["i"]), int(spec["salt"]), str(spec["shape"]), ctx.upstream, via_ref)


def fold(ctx: cp.StepContext) -> object:
    """The plain-function agent."""
    return _output(ctx)


async def fold_async(ctx: cp.StepContext) -> object:
    """The coroutine agent; it also says which process ran it (not part of its output)."""
    ctx.emit(PID_EVENT, {"pid": os.getpid()})
    return _output(ctx)


def expected(nodes: list[Node]) -> dict[str, object]:
    """Every step's output, computed here in the DAG's order."""
    out: dict[str, object] = {}
    for node in nodes:
        upstream = {k: out[k] for k in node.needs}
        via_ref = out[node.via_ref] if node.via_ref is not None else None
        out[node.id] = compute(node.index, node.salt, node.shape, upstream, via_ref)
    return out


def workflow(nodes: list[Node], name: str = "dag-1000") -> cp.Workflow:
    b = cp.WorkflowBuilder(name)
    b.agent("fold-sync", function=fold)
    b.agent("fold-async", function=fold_async)
    for node in nodes:
        b.step(node.id, agent=node.agent, needs=node.needs, input=step_input(node), estimate=0.01)
    return b.build()
