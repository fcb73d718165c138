"""Hypothesis strategies: small random instances of the model, policies and worlds.

Policies are drawn from the policy registry: every registered kind, each parameter from
the example domain its class declares (``stability.policies.base``), so a new policy is
covered with no edit here.
"""

import math

from hypothesis import assume
from hypothesis import strategies as st

import stability as s
from stability.clock import Linear, li_dai_peng
from stability.policies import base, registry


@st.composite
def requests(draw, max_requests=40, max_slot=30, max_prompt=8, max_decode=12, max_classes=3,
             timed=False):
    n = draw(st.integers(0, max_requests))
    k = draw(st.integers(1, max_classes))
    ints = lambda lo, hi: st.lists(st.integers(lo, hi), min_size=n, max_size=n)  # noqa: E731
    times = None
    if timed:  # arrival times on a millisecond grid, so ties happen
        times = [t / 1000 for t in draw(st.lists(st.integers(0, 3000), min_size=n, max_size=n))]
    return s.Requests(draw(ints(0, max_slot)), draw(ints(1, max_prompt)),
                      draw(ints(1, max_decode)), draw(ints(0, k - 1)), arrival_time=times)


def domain(d, num_classes: int):
    """The hypothesis strategy of an example domain."""
    if isinstance(d, base.Ints):
        return st.integers(d.low, d.high)
    if isinstance(d, base.Floats):
        return st.floats(d.low, d.high)
    if isinstance(d, base.Choice):
        return st.sampled_from(d.values)
    if isinstance(d, base.OneOf):
        return st.one_of(*(domain(x, num_classes) for x in d.domains))
    if isinstance(d, base.Mapped):
        return domain(d.domain, num_classes).map(d.function)
    if isinstance(d, base.PerClass):
        return st.tuples(*(domain(d.domain, num_classes) for _ in range(num_classes)))
    raise TypeError(f"no strategy for the domain {d!r}")


@st.composite
def policies(draw, num_classes=3, kinds=None):
    """A registered policy with parameters from its example domains (invalid combinations,
    such as a non-integer deterministic budget, are rejected)."""
    kind = draw(st.sampled_from(sorted(kinds or registry())))
    cls = registry()[kind]
    kwargs = {f.name: draw(domain(f.metadata["examples"], num_classes))
              for f in cls.parameters() if f.metadata["examples"] is not None}
    try:
        return cls(**kwargs)
    except ValueError:
        assume(False)


CLOCKS = (None, Linear(c0=0.01, c_seq=0.001, c_ctx=0.0001, c_prefill=0.0005),
          Linear(c0=0.0, c_seq=0.25, c_ctx=0.125, c_prefill=0.5), li_dai_peng(), s.clock.jaillet())
"""Unit slots, two linear clocks (the second with binary-fraction coefficients) and the
two published presets."""


@st.composite
def worlds(draw, clocks=True):
    """simulate's world arguments: eviction, requeue, block size and clock."""
    world = dict(eviction=draw(st.sampled_from(["restart", "recompute"])),
                 requeue=draw(st.sampled_from(["arrival", "front"])),
                 block_size=draw(st.sampled_from([1, 1, 2, 4])))
    if clocks:
        world["clock"] = draw(st.sampled_from(CLOCKS))
    return world


FIFO_POLICIES = (s.FlowControl, s.ClassBudgets, s.Greedy, s.Conservative, s.AMax, s.MCBenchmark)


@st.composite
def instances(draw, world=False):
    """(requests, policy, memory, horizon, seed[, world]) with every request able to
    complete."""
    w = draw(worlds()) if world else {}
    timed = w.get("clock") is not None
    req = draw(requests(timed=timed))
    policy = draw(policies(num_classes=max(req.num_classes, 3)))
    block = w.get("block_size", policy.world_defaults.get("block_size", 1))
    need = int((req.prompt + req.decode).max()) if len(req) else 2
    need = -(-need // block) * block
    memory = draw(st.integers(max(need, 2), max(need, 2) + 80))
    horizon = draw(st.one_of(st.none(), st.integers(0, 150)))
    seed = draw(st.integers(0, 2**32))
    if world:
        return req, policy, memory, horizon, seed, w
    return req, policy, memory, horizon, seed


def flatten(value, prefix=""):
    """A nested dict / dataclass dict as {dotted key: leaf}."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def assert_metrics_equal(a, b, rel=1e-9):
    """Equal metrics; floats to ``rel`` (the KV second moment is summed in different orders)."""
    fa, fb = flatten(a.to_dict()), flatten(b.to_dict())
    assert fa.keys() == fb.keys()
    for key, x in fa.items():
        y = fb[key]
        if isinstance(x, float) and isinstance(y, float):
            assert (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=rel), key
        else:
            assert x == y, key


def runnable_horizon(req, policy, memory, horizon, seed, block_size=None, **world):
    """``horizon``, or 150 slots when a horizon=None run could never finish."""
    if horizon is not None:
        return horizon
    block = block_size or policy.world_defaults.get("block_size", 1)
    enc = policy.encode(memory, req.num_classes)
    predicted = (enc.predictions.draw(req.decode, seed).capped(memory - req.prompt)
                 if enc.predictions else None)
    try:
        if len(req):
            policy.check_progress(req, memory, predicted, block=block)
    except ValueError:
        return 150
    return None
