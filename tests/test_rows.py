"""VERIFICATION rows of the budget and baselines experiments on hand-made results: each row
passes on data that meets its criterion and fails on data that does not (no verdict is
fixed in code)."""

import numpy as np
import pytest

from experiments import baselines, budget
from experiments.common import summary

REPS = [0, 1, 2, 3]


def _point(budget_, latency, overflow=0.0, delay=1.0):
    latency = np.asarray(latency, float)
    return {"budget": budget_, "replications": REPS,
            "latency_mean": summary(latency), "latency_p95": summary(2 * latency),
            "overflow_rate": summary([overflow] * 4), "queueing_delay_mean": summary(
                [delay - 0.1, delay + 0.1, delay - 0.05, delay + 0.05])}


def _budget_results(tuned_budget, latency_at_tuned, lindley=1.0, lam=7.0, overflow=0.0):
    best = [40.0, 41.0, 40.5, 40.2]
    pts = [_point(7.2, [90.0, 95.0, 93.0, 91.0]), _point(9.0, best),
           _point(tuned_budget, latency_at_tuned, overflow=overflow)]
    load = {"load": 0.7, "arrival_rate": lam, "window": {"low": lam, "high": 10.0},
            "points": sorted(pts, key=lambda p: p["budget"]),
            "theory": {"tuned_lindley_delay": lindley}}
    return {"theory": {"tuned": {"budget": tuned_budget, "target_overflow": 1e-3,
                                 "overflow": 5e-4}, "tuned_fft": 1e-4},
            "loads": {"0.7": load}}


def _verdicts(rows):
    return {r.claim.split(": ", 1)[-1]: r.verdict for r in rows}


def test_budget_rows_pass_at_a_good_tuner():
    v = _verdicts(budget.verify(_budget_results(9.5, [40.3, 41.2, 40.4, 40.5])))
    assert len(v) == 6 and set(v.values()) == {"PASS"}, v


def test_budget_latency_rows_fail_when_the_tuner_is_worse_than_the_best():
    v = _verdicts(budget.verify(_budget_results(9.5, [44.0, 45.0, 44.5, 44.2])))
    assert v["mean latency is minimised near the tuner's budget"] == "FAIL"
    assert v["p95 latency is minimised near the tuner's budget"] == "FAIL"
    assert v["the tuner's budget lies in the budget window (lambda, M / E[w])"] == "PASS"


def test_budget_rows_fail_when_the_tuner_is_below_lambda():
    rows = budget.verify(_budget_results(6.4, [900.0, 950.0, 930.0, 910.0], lindley=np.nan))
    v = _verdicts(rows)
    assert v["the tuner's budget lies in the budget window (lambda, M / E[w])"] == "FAIL"
    assert v["mean queueing delay at the tuner's budget equals the Lindley mean delay"] == "FAIL"
    assert v["mean latency is minimised near the tuner's budget"] == "FAIL"
    lindley = [r for r in rows if "Lindley" in r.claim][0]
    assert "grows without bound" in lindley.theory


def test_budget_rows_fail_on_overflow_and_lindley_mismatch():
    v = _verdicts(budget.verify(_budget_results(9.5, [40.3, 41.2, 40.4, 40.5], lindley=3.0,
                                                overflow=0.01)))
    assert v["mean queueing delay at the tuner's budget equals the Lindley mean delay"] == "FAIL"
    assert v["simulated overflow frequency at the tuner's budget is consistent with the "
             "prediction"] == "FAIL"


def test_budget_prediction_row_fails_when_the_bound_exceeds_the_target():
    r = _budget_results(9.5, [40.3, 41.2, 40.4, 40.5])
    r["theory"]["tuned"]["overflow"] = 2e-3
    assert _verdicts(budget.verify(r))[
        "the tuner's budget meets the per-slot overflow target (prediction)"] == "FAIL"


def test_budget_rows_cover_every_load():
    r = _budget_results(9.5, [40.3, 41.2, 40.4, 40.5])
    r["loads"]["0.9"] = dict(r["loads"]["0.7"], load=0.9)
    rows = budget.verify(r)
    assert len(rows) == 1 + 2 * 5
    assert sum(r.claim.startswith("load 0.9: ") for r in rows) == 5


# ------------------------------------------------------------------------- baselines
def _interval_point(values, load=0.95):
    return {"load": load, "budget": 7.6, "multiplier": 1.05, "replications": REPS,
            **{m: summary(values) for m in baselines.METRICS}}


@pytest.mark.parametrize("flow, greedy, better, expected", [
    ([1, 2, 1.5, 1.2], [5, 6, 5.5, 5.1], "lower", "PASS"),
    ([5, 6, 5.5, 5.1], [1, 2, 1.5, 1.2], "lower", "FAIL"),
    ([1, 2, 1.5, 1.2], [1.1, 1.9, 1.6, 1.2], "lower", "FAIL"),
    ([5, 6, 5.5, 5.1], [1, 2, 1.5, 1.2], "higher", "PASS"),
    ([1, 2, 1.5, 1.2], [5, 6, 5.5, 5.1], "higher", "FAIL"),
])
def test_baselines_compare(flow, greedy, better, expected):
    v, diff, why = baselines.compare(_interval_point(flow), _interval_point(greedy),
                                     "latency_mean", better)
    assert v == expected
    assert (why == "") == (expected == "PASS")


def test_baselines_compare_single_replication_is_inconclusive():
    fp = {"replications": [0], "latency_mean": summary([1.0])}
    gp = {"replications": [0], "latency_mean": summary([5.0])}
    assert baselines.compare(fp, gp, "latency_mean", "lower")[0] == "INCONCLUSIVE"


def test_baselines_compare_refuses_unpaired_runs():
    fp = _interval_point([1, 2, 1.5, 1.2])
    gp = dict(_interval_point([5, 6, 5.5, 5.1]), replications=[4, 5, 6, 7])
    with pytest.raises(RuntimeError, match="not paired"):
        baselines.compare(fp, gp, "latency_mean", "lower")


def test_baselines_rows_read_the_pre_eviction_demand():
    """A policy pinned at M while thrashing has a flat KV held but a jumpy demand: the KV
    rows read the demand, so a thrashing Greedy cannot win them."""
    flow = _interval_point([1, 2, 1.5, 1.2])
    greedy = _interval_point([5, 6, 5.5, 5.1])
    greedy["kv_cv"] = summary([0.0004] * 4)  # held KV, pinned at M: would "win"
    results = {"workloads": {"w": {"curves": {baselines.FLOW: [flow],
                                              baselines.BASELINE: [greedy]}}}}
    rows = [r for r in baselines.verify(results) if "KV" in r.claim]
    assert rows and all(r.verdict == "PASS" for r in rows)


# ------------------------------------------------------------------------- hindsight
def _hindsight_results(flow, greedy, mcsf, clearing_unfinished=0, optimum=100):
    """Instances of both groups with the given total latencies per policy."""
    from experiments import hindsight

    rows = []
    for i in range(len(flow)):
        for group in hindsight.GROUPS:
            lat = {hindsight.FLOW: flow[i], "Greedy": greedy[i], "MC-SF (exact)": mcsf[i],
                   "alpha-protection 0.1, beta-clearing 0.2":
                       None if i < clearing_unfinished else greedy[i]}
            rows.append({"family": f"{group} batch", "status": "optimal",
                         "optimum": optimum, "latencies": lat})
    return {"rows": rows, "instances": len(rows), "optimal": len(rows),
            "tuned": {f"{g} batch": 3 for g in hindsight.GROUPS},
            "params": {"groups": list(hindsight.GROUPS)}, **hindsight.summarise(rows)}


def _hindsight_verdicts(results):
    from experiments import hindsight

    return {r.claim: r.verdict for r in hindsight.verify(results)}


def test_hindsight_rows_pass_when_the_claims_hold():
    v = _hindsight_verdicts(_hindsight_results(
        flow=[105, 108, 104, 110], greedy=[130, 135, 128, 140], mcsf=[101, 102, 100, 103]))
    assert len(v) == 2 + 2 * 3 and set(v.values()) == {"PASS"}, v


def test_hindsight_rows_fail_when_the_claims_do_not():
    v = _hindsight_verdicts(_hindsight_results(
        flow=[150, 160, 155, 170], greedy=[130, 135, 128, 140], mcsf=[120, 125, 119, 130],
        clearing_unfinished=1))
    assert v["every policy finishes every instance"] == "FAIL"
    for group in ("jaillet", "small"):
        assert v[f"{group}: MC-SF with exact predictions is near-optimal (Jaillet et al.)"] \
            == "FAIL"
        assert v[f"{group}: flow control comes close to hindsight-optimal schedules without "
                 "knowing output lengths (paper)"] == "FAIL"
        assert v[f"{group}: flow control (tuned budget b < n) has lower total latency than "
                 "Greedy on the same instances (paired)"] == "FAIL"
    assert v["no policy beats the hindsight optimum (sanity of the integer program)"] == "PASS"


def test_hindsight_sanity_row_fails_below_the_optimum():
    v = _hindsight_verdicts(_hindsight_results(
        flow=[105, 108, 104, 110], greedy=[130, 135, 128, 140], mcsf=[99, 102, 100, 103]))
    assert v["no policy beats the hindsight optimum (sanity of the integer program)"] == "FAIL"


def test_hindsight_budgets_bind():
    from experiments import hindsight

    assert all(b < 6 for b in hindsight.budget_grid(6))
    assert hindsight.budget_grid(1) == [1]


def test_hindsight_instances_are_the_stated_families():
    from experiments import hindsight

    req, memory = hindsight.instance("small batch", 30, 4)
    assert memory == hindsight.SMALL_MEMORY and (req.arrival == 0).all()
    assert set(req.decode.tolist()) <= set(hindsight.SMALL_DECODES)
    assert req.prompt.min() >= 1 and req.prompt.max() <= 3
    req, memory = hindsight.instance("jaillet online 1.0", 30, 4)
    assert 30 <= memory <= 50 and (np.diff(req.arrival) >= 0).all()
    assert ((req.prompt + req.decode) <= memory).all()


def test_baselines_row_fails_for_a_known_bad_flow_budget():
    """End to end on real runs: flow control with a budget far below lambda (a known-bad
    policy, whose queue grows) against Greedy on geometric lengths at load 0.7: its latency
    row must FAIL with Greedy significantly better."""
    import stability as s

    w = s.Workload.single(1.0, s.Deterministic(10), s.Geometric(1 / 40))
    memory = 4000
    w = w.with_total_rate(0.7 * memory / w.mean_kv_load())

    def point(policy):
        values = [s.simulate_stream(w, policy, memory, 6000, seed=k, warmup=1000)
                  .metrics().latency.mean for k in range(4)]
        return {"load": 0.95, "budget": 1.0, "multiplier": 0.5, "replications": REPS,
                **{m: summary(values) for m in baselines.METRICS}}

    bad = point(s.FlowControl(0.5 * w.total_rate, "two-point"))
    greedy = point(s.Greedy())
    results = {"workloads": {"geometric": {"curves": {baselines.FLOW: [bad],
                                                      baselines.BASELINE: [greedy]}}}}
    rows = [r for r in baselines.verify(results) if "mean latency" in r.claim]
    assert rows and rows[0].verdict == "FAIL"
    assert "Greedy is significantly better" in rows[0].simulation


# ---------------------------------------------------------------------------- traces
def _trace_results(flow, greedy):
    from experiments import traces

    def policy(v):
        return {"spec": {"budget": 2.0}, "latency_p95": v, "latency_mean": v, "demand_cv": v}

    run = {"load": traces.CLAIM_LOAD, "source": "trace", "tuning": {"multiplier": 1.4},
           "policies": {traces.FLOW: policy(flow), "Greedy": policy(greedy)}}
    return {"traces": {"conv": {"runs": [run]}}}


@pytest.mark.parametrize("flow, greedy, expected", [(1.0, 2.0, "PASS"), (2.0, 1.0, "FAIL"),
                                                    (1.0, 1.0, "FAIL")])
def test_traces_rows_pass_and_fail(flow, greedy, expected):
    from experiments import traces

    rows = traces.verify(_trace_results(flow, greedy))
    assert len(rows) == 3 and {r.verdict for r in rows} == {expected}
