"""Hypothesis strategies: small random instances of the model and policies."""

from hypothesis import strategies as st

import stability as s


@st.composite
def requests(draw, max_requests=40, max_slot=30, max_prompt=8, max_decode=12, max_classes=3):
    n = draw(st.integers(0, max_requests))
    k = draw(st.integers(1, max_classes))
    ints = lambda lo, hi: st.lists(st.integers(lo, hi), min_size=n, max_size=n)  # noqa: E731
    return s.Requests(draw(ints(0, max_slot)), draw(ints(1, max_prompt)),
                      draw(ints(1, max_decode)), draw(ints(0, k - 1)))


@st.composite
def policies(draw, num_classes=3):
    kind = draw(st.sampled_from(["flow", "poisson", "two-point", "classes", "greedy",
                                 "conservative", "mcsf", "mcb", "amax", "amin"]))
    if kind == "flow":
        return s.FlowControl(draw(st.integers(0, 8)))
    if kind in ("poisson", "two-point"):
        # tiny positive means would make horizon=None runs practically endless
        return s.FlowControl(draw(st.one_of(st.just(0.0), st.floats(0.25, 8.0))), law=kind)
    if kind == "classes":
        return s.ClassBudgets(tuple(draw(st.integers(0, 4)) for _ in range(num_classes)))
    if kind == "greedy":
        return s.Greedy(draw(st.sampled_from([0.0, 0.1, 0.25, 0.5])),
                        clearing=draw(st.sampled_from([0.0, 0.0, 0.2, 0.5])))
    if kind == "conservative":
        return s.Conservative(draw(st.integers(1, 15)))
    if kind in ("mcsf", "mcb"):
        predictions = draw(st.one_of(st.just(s.Predictions()),
                                     st.floats(0.05, 1.0).map(s.Predictions.noisy)))
        return (s.MCSF if kind == "mcsf" else s.MCBenchmark)(predictions)
    interval = draw(st.floats(0.0, 0.9).map(s.Predictions.interval))
    return (s.AMax if kind == "amax" else s.AMin)(interval)


FIFO_POLICIES = (s.FlowControl, s.ClassBudgets, s.Greedy, s.Conservative, s.AMax, s.MCBenchmark)


@st.composite
def instances(draw):
    """(requests, policy, memory, horizon, seed) with every request able to complete."""
    req = draw(requests())
    need = int((req.prompt + req.decode).max()) if len(req) else 2
    memory = draw(st.integers(max(need, 2), max(need, 2) + 80))
    policy = draw(policies(num_classes=max(req.num_classes, 3)))
    horizon = draw(st.one_of(st.none(), st.integers(0, 150)))
    seed = draw(st.integers(0, 2**32))
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
    import math

    fa, fb = flatten(a.to_dict()), flatten(b.to_dict())
    assert fa.keys() == fb.keys()
    for key, x in fa.items():
        y = fb[key]
        if isinstance(x, float) and isinstance(y, float):
            assert (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=rel), key
        else:
            assert x == y, key


def runnable_horizon(req, policy, memory, horizon, seed):
    """``horizon``, or 150 slots when a horizon=None run could never finish."""
    from stability.simulate import _check_progress

    if horizon is not None:
        return horizon
    enc = policy.encode(memory, req.num_classes)
    predicted = (enc.predictions.draw(req.decode, seed).capped(memory - req.prompt)
                 if enc.predictions else None)
    try:
        _check_progress(req, policy, memory, predicted)
    except ValueError:
        return 150
    return None
