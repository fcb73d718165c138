"""VERIFICATION rows of experiments.adaptive on hand-made results: each row passes on data
that meets its criterion and fails on data that does not (no verdict is fixed in code)."""

import numpy as np

from experiments import adaptive

REPS = [0, 1, 2, 3]
NOISE = np.array([-1.0, 1.0, -0.5, 0.5])


def _policy(latency, growth=0.0, switches=0, budgeted=(0, 0)):
    lat = latency + NOISE
    return {"replications": REPS, "latency_mean": lat.tolist(),
            "latency_p95": (2 * lat).tolist(), "growth": (growth + 0.01 * NOISE).tolist(),
            "switches": [switches] * 4, "budgeted_slots": [budgeted[0]] * 4,
            "budgeted_overflows": [budgeted[1]] * 4}


def _cell(key, greedy, flow, adapt, load=0.95, growth=0.0, overflows=0, bound=None,
          checked=None):
    used = bound is not None
    policies = {"Greedy": _policy(greedy), "FlowControl (tuned)": _policy(flow),
                "AdaptiveFlow": _policy(adapt, growth, int(used),
                                        (1000, overflows) if used else (0, 0))}
    if checked is not None:
        policies[adaptive.CHECKED] = _policy(checked)
    return {"key": key, "load": load, "label": key, "world_name": "restart",
            "policies": policies,
            "guarantee": {"overflow": bound, "candidates": 12} if used else None}


def _verdicts(cells):
    rows = adaptive.verify({"cells": cells})
    assert [r.claim for r in rows][:2] == [
        "with default parameters adaptive flow control's mean and p95 latency are within 5% "
        "of the better of Greedy and tuned flow control in every cell",
        "adaptive flow control is strictly better than both Greedy and tuned flow control "
        "somewhere"]
    return [r.verdict for r in rows]


GOOD = [_cell("thrash", 3000.0, 50.0, 51.0, overflows=3, bound=0.01, checked=40.0),
        _cell("random", 80.0, 500.0, 60.0, checked=81.0)]


def test_every_row_passes_on_good_results():
    assert _verdicts(GOOD) == ["PASS"] * 7


def test_budgeted_mode_rows_fail_when_the_tuned_budget_does_not_help():
    """Row 5 fails where CheckedFlow at its tuned budget is significantly > 1.05 x the
    better policy; row 6 fails where it only ties; without CheckedFlow runs neither row."""
    worse = [GOOD[0], _cell("random", 80.0, 500.0, 60.0, checked=120.0)]
    assert _verdicts(worse)[4:] == ["FAIL", "PASS", "PASS"]
    tie = [_cell("thrash", 3000.0, 50.0, 51.0, overflows=3, bound=0.01, checked=50.0),
           GOOD[1]]
    assert _verdicts(tie)[4:] == ["PASS", "FAIL", "PASS"]
    bare = [_cell("thrash", 3000.0, 50.0, 51.0, overflows=3, bound=0.01),
            _cell("random", 80.0, 500.0, 60.0)]
    assert _verdicts(bare) == ["PASS"] * 4


def test_within_row_fails_when_adaptive_is_significantly_worse():
    bad = [_cell("thrash", 3000.0, 50.0, 60.0, overflows=3, bound=0.01), GOOD[1]]
    assert _verdicts(bad)[0] == "FAIL"
    # more than 5% above on average, but the noise hides it: inconclusive, not a pass
    noisy = _cell("thrash", 3000.0, 50.0, 53.0, overflows=3, bound=0.01)
    noisy["policies"]["AdaptiveFlow"]["latency_mean"] = [45.0, 61.0, 46.0, 60.0]
    noisy["policies"]["AdaptiveFlow"]["latency_p95"] = [90.0, 122.0, 92.0, 120.0]
    assert _verdicts([noisy, GOOD[1]])[0] == "INCONCLUSIVE"


def test_better_than_both_row_fails_when_it_only_ties():
    assert _verdicts([GOOD[0], _cell("random", 80.0, 500.0, 80.0)])[1] == "FAIL"


def test_stability_row_fails_on_a_growing_queue_below_lambda_star():
    assert _verdicts([_cell("thrash", 3000.0, 50.0, 51.0, growth=0.2, overflows=3,
                            bound=0.01), GOOD[1]])[2] == "FAIL"
    # above lambda* growth is expected and not checked
    v = _verdicts([_cell("thrash", 3000.0, 50.0, 51.0, load=1.05, growth=0.2, overflows=3,
                         bound=0.01), GOOD[1]])
    assert v[2] == "PASS"


def test_overflow_row_fails_above_the_bound():
    v = _verdicts([_cell("thrash", 3000.0, 50.0, 51.0, overflows=30, bound=0.01), GOOD[1]])
    assert v[3] == "FAIL"
    rows = adaptive.verify({"cells": [_cell("thrash", 3000.0, 50.0, 51.0, overflows=30,
                                            bound=1.0), GOOD[1]]})
    assert rows[3].verdict == "PASS" and "vacuous (= 1, ceil(b) E[w] >= M) in 1 of 1" in \
        rows[3].theory


def test_trace_replays_have_no_growth_row_entry():
    """A replay runs until every request completes: it enters rows 1 and 2, not row 3."""
    trace = _cell("azure-conv-0.9", 300.0, 310.0, 300.0)
    del trace["policies"]["AdaptiveFlow"]["growth"]
    rows = adaptive.verify({"cells": [GOOD[0], trace]})
    assert "1 cells below lambda*" in rows[2].simulation and rows[0].verdict == "PASS"


def test_budgeted_mode_stability_row_fails_only_where_flow_control_is_stable():
    """Row 7: CheckedFlow growing where tuned flow control does not fails; both growing
    (no tested budget stable) is reported but does not fail."""
    def cell(flow_growth, checked_growth):
        c = _cell("thrash", 3000.0, 50.0, 51.0, overflows=3, bound=0.01, checked=40.0)
        c["policies"]["FlowControl (tuned)"]["growth"] = (flow_growth + 0.01 * NOISE).tolist()
        c["policies"][adaptive.CHECKED]["growth"] = (checked_growth + 0.01 * NOISE).tolist()
        return c

    rows = adaptive.verify({"cells": [cell(0.0, 0.2), GOOD[1]]})
    assert rows[6].verdict == "FAIL" and "thrash (" in rows[6].simulation
    rows = adaptive.verify({"cells": [cell(0.2, 0.2), GOOD[1]]})
    assert rows[6].verdict == "PASS" and "both grow (no tested budget is stable): thrash" in \
        rows[6].simulation


def test_twin_rows_pass_and_fail():
    """Rows 8-10 (TwinFlow): within 5% / better than both / stable where flow control is,
    each shown to fail on data that breaks it; absent without TwinFlow runs."""
    def cells(twin_thrash, twin_random, twin_growth=0.0, flow_growth=0.0):
        out = [_cell("thrash", 3000.0, 50.0, 51.0, overflows=3, bound=0.01, checked=40.0),
               _cell("random", 80.0, 500.0, 60.0, checked=81.0)]
        for c, lat in zip(out, (twin_thrash, twin_random)):
            c["policies"][adaptive.TWIN] = _policy(lat)
        out[0]["policies"][adaptive.TWIN]["growth"] = (twin_growth + 0.01 * NOISE).tolist()
        out[0]["policies"]["FlowControl (tuned)"]["growth"] = (flow_growth +
                                                               0.01 * NOISE).tolist()
        return out

    assert _verdicts(cells(40.0, 80.0))[7:] == ["PASS", "PASS", "PASS"]
    assert _verdicts(cells(40.0, 120.0))[7] == "FAIL"  # 1.5 x Greedy on random lengths
    assert _verdicts(cells(50.0, 80.0))[8] == "FAIL"  # ties flow control: better nowhere
    assert _verdicts(cells(40.0, 80.0, twin_growth=0.2))[9] == "FAIL"
    rows = adaptive.verify({"cells": cells(40.0, 80.0, twin_growth=0.2, flow_growth=0.2)})
    assert rows[9].verdict == "PASS" and "both grow (no tested budget is stable): thrash" in \
        rows[9].simulation
    assert len(_verdicts(GOOD)) == 7


def test_twin_bound_row_passes_below_and_fails_above_the_bound():
    """Row 11: TwinFlow's overflow events per budgeted slot against the bound at its
    largest budget, in the cells where it held one; absent when it held none."""
    def cells(overflows):
        out = [_cell("thrash", 3000.0, 50.0, 51.0, overflows=3, bound=0.01, checked=40.0),
               _cell("random", 80.0, 500.0, 60.0, checked=81.0)]
        for c, lat in zip(out, (40.0, 80.0)):
            c["policies"][adaptive.TWIN] = _policy(lat)
        out[0]["policies"][adaptive.TWIN].update(budgeted_slots=[1000] * 4,
                                                 budgeted_overflows=[overflows] * 4)
        out[0]["twin_guarantee"] = {"overflow": 0.01, "candidates": 12}
        return out

    rows = adaptive.verify({"cells": cells(3)})
    assert rows[10].claim.startswith("twin-tuned flow control's overflow rate")
    assert rows[10].verdict == "PASS" and "thrash: 0.003 per budgeted slot" in \
        rows[10].simulation
    assert adaptive.verify({"cells": cells(30)})[10].verdict == "FAIL"
    bare = cells(3)
    del bare[0]["twin_guarantee"]
    assert len(adaptive.verify({"cells": bare})) == 10
