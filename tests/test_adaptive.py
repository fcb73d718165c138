"""Adaptive and prediction-aware flow control (issue 12): the rule worked by hand in both
engines' state machines, the closed form over quiet stretches, the policies end to end,
the command line and sweeps, and the theory of docs/adaptive.md section 3."""

import math

import numpy as np
import pytest
from numba import njit

import stability as s
from stability.engine import control as ctl
from stability.engine.control import ADAPTIVE, PREDICTED_FLOW, SCALE
from stability.engine.reference_control import ReferenceControl
from stability.policies.adaptive import AdaptiveFlow, CheckedFlow, PredictedFlow
from stability.theory.effective import loss_rate_bound
from stability.theory.adaptive import (budgeted_guarantee, certified_budgets,
                                       memory_time_window, predicted_overflow_bound,
                                       refusals_and_removals)


# ------------------------------------------------------------------ the two state machines
@njit
def _k_refill(rec, code):
    ctl.refill(code, rec[0])


@njit
def _k_allows(rec, code):
    return ctl.allows(code, rec[0])


@njit
def _k_charge(rec, code, prompt, point):
    ctl.charge(code, rec[0], prompt, point)


@njit
def _k_observe(rec, code, t, warmup, arrived, decoded, wasted, capped, overflowed, done,
               done_decode, done_square):
    ctl.observe(code, rec[0], t, warmup, arrived, decoded, wasted, capped, overflowed, done,
                done_decode, done_square)


@njit
def _k_skip(rec, code, t0, t1, n, warmup):
    ctl.skip(code, rec[0], t0, t1, n, warmup)


class Kernel:
    """The jitted hooks on a CONTROL record, with ReferenceControl's interface."""

    def __init__(self, code, rec):
        self.code, self.rec = code, rec.copy()

    def __getattr__(self, name):
        return self.rec[0][name].item()

    def set(self, **values):
        for k, v in values.items():
            self.rec[0][k] = v

    def refill(self):
        _k_refill(self.rec, self.code)

    def allows(self):
        return _k_allows(self.rec, self.code)

    def charge(self, prompt, point):
        _k_charge(self.rec, self.code, prompt, point)

    def observe(self, *args):
        _k_observe(self.rec, self.code, *args)

    def skip(self, t0, t1, n, warmup):
        _k_skip(self.rec, self.code, t0, t1, n, warmup)


class Reference(ReferenceControl):
    def set(self, **values):
        for k, v in values.items():
            setattr(self, k, v)

    def skip(self, t0, t1, n, warmup):  # slot by slot: what the reference does
        for _ in range(t0, t1):
            self.refill()
        self.p_decoded += (t1 - t0) * n
        if self.budgeted and t1 > warmup:
            m = t1 - max(t0, warmup)
            self.budgeted_slots += m
            self.p_budgeted += m


def machines(policy=None, code=ADAPTIVE):
    rec = (policy or AdaptiveFlow(period=4)).encode(1000, 1).control
    return [Kernel(code, rec), Reference(code, rec)]


ENGINES = pytest.mark.parametrize("which", [0, 1], ids=["kernel", "reference"])


def budgeted(m, rate, arrival_rate):
    m.set(budgeted=True, rate=rate, quantum=int(rate * m.unit_scale), credit=0,
          arrival_rate=arrival_rate, started=True, hold=10**6, hold_length=10**6)


@ENGINES
def test_credit_admits_one_and_a_half_per_slot_as_two_then_one(which):
    """b = 1.5: credit 1.5 -> two admissions (debt -0.5) -> 1.0 -> one (0) -> 1.5 -> two ..."""
    m = machines()[which]
    budgeted(m, 1.5, 1.0)
    counts = []
    for _ in range(6):
        m.refill()
        n = 0
        while m.allows():
            m.charge(10, 0)
            n += 1
        counts.append(n)
    assert counts == [2, 1, 2, 1, 2, 1]
    assert m.credit == 0


@ENGINES
def test_greedy_mode_never_limits(which):
    m = machines()[which]
    m.refill()
    for _ in range(1000):
        assert m.allows()
        m.charge(10, 0)
    assert m.credit == 0


@ENGINES
def test_budget_after_a_wasting_period(which):
    """One period (4 slots) wasting 64 of 1000 decoded tokens: the long averages become
    64 / 64 = 1 and 1000 / 64 = 15.625, above the target 0.0015, so b shrinks by 1/1024."""
    m = machines()[which]
    budgeted(m, 10.0, 5.0)
    for t in range(4):
        m.observe(t, 0, 5 * SCALE, 250, 64 if t == 3 else 0, False, t == 3, 0, 0, 0)
    assert m.waste_long == 1.0 and m.decoded_long == 15.625
    assert m.rate == 10.0 - 10.0 / 1024
    assert m.quantum == int((10.0 - 10.0 / 1024) * SCALE)
    assert m.arrival_rate == 5.0 + (5.0 - 5.0) / 8  # 5 SCALE units per slot
    assert m.budgeted_slots == 4 and m.budgeted_overflows == 1
    assert m.rate_sum == 40.0  # b = 10 over the period's four slots


@ENGINES
def test_budget_grows_when_it_held_a_request_back(which):
    m = machines()[which]
    budgeted(m, 10.0, 5.0)
    for t in range(4):
        m.observe(t, 0, 5 * SCALE, 250, 0, t == 2, False, 0, 0, 0)
    assert m.rate == 10.0 + 10.0 / 2048


@ENGINES
def test_budget_never_below_the_floor_and_hands_back_at_the_ceiling(which):
    m = machines()[which]
    budgeted(m, 1.0, 5.0)  # below 1.0625 x 5
    for t in range(4):
        m.observe(t, 0, 5 * SCALE, 250, 0, False, False, 0, 0, 0)
    assert m.rate == 1.0625 * 5.0 and m.budgeted
    m2 = machines()[which]
    budgeted(m2, 15.0, 5.0)  # = 3 x 5: the budget no longer binds
    for t in range(4):
        m2.observe(t, 0, 5 * SCALE, 250, 0, True, False, 0, 0, 0)
    assert not m2.budgeted and m2.greedy_age == 0


@ENGINES
def test_k_quiet_slots_in_closed_form(which):
    """After k quiet slots the credit is min(c + k q, q) and k n tokens were decoded."""
    m = machines()[which]
    budgeted(m, 2.25, 1.0)
    m.set(credit=-5 * SCALE)
    m.skip(10, 13, 7, 0)  # -5 + 3 x 2.25 = 1.75 < 2.25
    assert m.credit == -5 * SCALE + 3 * int(2.25 * SCALE)
    assert m.p_decoded == 21 and m.budgeted_slots == 3
    # a very long stretch saturates at q (the kernel never forms k q; the reference loops)
    m.skip(13, 10**15 if which == 0 else 2000, 7, 0)
    assert m.credit == int(2.25 * SCALE)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 7, 40])
@pytest.mark.parametrize("credit", [-9, -3, 0, 2, 5])
def test_skip_equals_slot_by_slot(k, credit):
    kern, ref = machines()
    for m in (kern, ref):
        budgeted(m, 2.5, 1.0)
        m.set(credit=credit * SCALE)
        m.skip(100, 100 + k, 3, 50)
    assert (kern.credit, kern.p_decoded, kern.budgeted_slots) == \
        (ref.credit, ref.p_decoded, ref.budgeted_slots)


def _greedy_with_moments(m, waste_short, decoded_short):
    m.set(started=True, arrival_rate=2.0, mean_decode=40.0, mean_square=2500.0,
          waste_short=waste_short, decoded_short=decoded_short)


@ENGINES
def test_thrash_trigger_is_z_of_the_short_waste(which):
    """z^2 = W^2 E[o] / (D C E[(l+o)^2]) with the averages after the period: with no waste
    in the period W = 0.75 w0 and D = 0.75 d0 + 100 / 4, so z = 0.184 (w0 = 70, stays
    greedy) and z = 0.224 (w0 = 85, switches) on either side of the trigger 0.2."""
    for w0, switches in ((4.0, 0), (70.0, 0), (85.0, 1)):
        m = machines(AdaptiveFlow(period=4, trigger=0.2))[which]
        _greedy_with_moments(m, w0, 400.0)
        for t in range(4):
            m.observe(t, 0, 2 * SCALE, 25, 0, False, False, 0, 0, 0)
        w, d = 0.75 * w0, 0.75 * 400.0 + 25.0
        z = math.sqrt(w * w * 40.0 / (d * 4 * 2500.0))
        assert (z > 0.2) == bool(switches) and m.switches == switches
        if switches:
            assert m.budgeted and m.rate == 1.2 * 2.0 and m.hold == 256


@ENGINES
def test_trial_of_greedy_fails_and_restores_the_budget(which):
    """After ``retry`` periods greedy is tried; a trial period wasting more than 4 x the
    target brings the last budget back and doubles the wait."""
    m = machines(AdaptiveFlow(period=1, retry=2))[which]
    budgeted(m, 3.0, 2.0)
    m.set(hold=2, hold_length=2, mean_decode=40.0, mean_square=2500.0)
    m.observe(0, 0, 2 * SCALE, 100, 0, True, False, 0, 0, 0)  # hold 2 -> 1
    assert m.budgeted
    m.observe(1, 0, 2 * SCALE, 100, 0, True, False, 0, 0, 0)  # hold -> 0: trial
    saved = m.rate
    assert not m.budgeted and m.trial == 16 and m.greedy_age == 1 and m.saved_rate == saved
    m.observe(2, 0, 2 * SCALE, 1000, 7, False, False, 0, 0, 0)  # 7 > 4 x 0.0015 x 1000
    assert m.budgeted and m.rate == saved and m.hold_length == 4 and m.hold == 4


@ENGINES
def test_trial_that_lasts_forgets_the_failures(which):
    m = machines(AdaptiveFlow(period=1, retry=2))[which]
    budgeted(m, 3.0, 2.0)
    m.set(hold=1, hold_length=2)
    t = 0
    m.observe(t, 0, 2 * SCALE, 100, 0, True, False, 0, 0, 0)
    assert not m.budgeted and m.greedy_age == 1
    for t in range(1, 4):  # greedy lasts as long as the budget held (2 periods): forget
        m.observe(t, 0, 2 * SCALE, 100, 0, False, False, 0, 0, 0)
    assert m.greedy_age == 0 and m.trial == 13


@ENGINES
def test_predicted_flow_credit_counts_memory_time(which):
    """W = 100: w_hat(l=2, o=3) = 2 x 3 + 6 = 12 per request; 9 candidates take 108."""
    pol = PredictedFlow(100)
    m = machines(pol, PREDICTED_FLOW)[which]
    m.refill()
    assert m.credit == 100
    assert ctl.memory_time(2, 3) == 12


# ------------------------------------------------------------------------ end to end
def test_greedy_mode_is_greedy_exactly():
    """Where the trigger never fires the adaptive policy's run is Greedy's, slot for slot."""
    w = s.Workload.single(5.0, 10, s.Geometric(1 / 40))
    req = w.generate(3000, 4)
    a = s.simulate(req, AdaptiveFlow(), 2000, horizon=3000, seed=4)
    g = s.simulate(req, s.Greedy(), 2000, horizon=3000, seed=4)
    assert a.raw.control.switches == 0
    assert np.array_equal(a.completion, g.completion) and a.raw.stats == g.raw.stats


@pytest.mark.parametrize("policy", [
    AdaptiveFlow(period=8, retry=4),
    AdaptiveFlow(period=8, retry=4, predictions=s.Predictions.noisy(0.5)),
    PredictedFlow(0.9 * 16492, s.Predictions.noisy(0.5))], ids=["adaptive", "adaptive-noisy",
                                                               "flow-predicted"])
def test_engines_agree_while_the_controller_switches(policy):
    """The Sec. 4.1 lattice at 0.95 lambda*: Greedy thrashes, so the controller switches,
    shrinks and grows its budget and tries greedy again (7 switches); both engines give the
    same run, ControlStats included."""
    w = s.Workload.paper_4_1(0.95 * 16492 / 1353.3333333 / 3)
    req = w.generate(2500, 7)
    fast = s.simulate(req, policy, 16492, horizon=2500, seed=7, warmup=300)
    ref = s.simulate(req, policy, 16492, horizon=2500, seed=7, warmup=300, engine="reference")
    assert fast.raw.differences(ref.raw) == []
    assert fast.raw.control == ref.raw.control
    if isinstance(policy, AdaptiveFlow):
        assert fast.raw.control.switches >= 2 and fast.raw.control.budgeted_slots > 1000
        assert fast.raw.control.budgeted_overflows > 0


@pytest.mark.slow
def test_lattice_thrash_is_tamed_and_random_lengths_stay_greedy():
    """Sec. 4.1 at 0.95 lambda* under restart: Greedy thrashes, adaptive flow control
    switches to its budget and keeps latency near the lengths; geometric lengths never
    switch."""
    lam = 0.95 * 16492 / 1353.3333 / 3
    w = s.Workload.paper_4_1(lam)
    a = s.simulate_stream(w, AdaptiveFlow(), 16492, 60_000, seed=3, warmup=12_000)
    g = s.simulate_stream(w, s.Greedy(), 16492, 60_000, seed=3, warmup=12_000)
    assert a.control.switches >= 1 and a.control.budgeted_slots > 40_000
    assert a.metrics().latency.mean < 100 < 1000 < g.metrics().latency.mean
    geo = s.Workload.single(0.95 * 16492 / 2000, 10, s.Geometric(1 / 40))
    r = s.simulate_stream(geo, AdaptiveFlow(), 16492, 60_000, seed=3)
    assert r.control.switches == 0


def test_predictions_change_only_the_units():
    """With exact predictions the adaptive policy counts predicted memory-time; in greedy
    mode (no waste: M large) the run is Greedy's."""
    req = s.Workload.paper_4_1(1.0).generate(300, 2)
    a = s.simulate(req, AdaptiveFlow(predictions=s.Predictions()), 10**6, horizon=400, seed=2)
    g = s.simulate(req, s.Greedy(), 10**6, horizon=400, seed=2)
    assert np.array_equal(a.completion, g.completion)


def test_predicted_flow_admits_its_memory_time_budget():
    """Saturated, exact predictions, M large (no bounce): the admitted memory-time per slot
    averages W (up to one request) and E[U] = W."""
    w = s.Workload.single(50.0, 10, s.UniformInt(5, 30))
    req = w.generate(2000, 1)
    W = 3000
    r = s.simulate(req, PredictedFlow(W), 10**7, horizon=2000, seed=1, warmup=1000)
    started = (r.start >= 0) | (r.completion >= 0)
    admitted = req.memory_time()[started & (r.first_token < 2000)]
    assert abs(admitted.sum() / 2000 - W) < req.memory_time().max() / 2000 + 1
    m = r.metrics()
    assert m.demand_mean * 10**7 == pytest.approx(W, rel=0.02)


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_checked_flow_at_an_integer_budget_is_paced_greedy(engine):
    """CheckedFlow(k) admits while the head fits and at most k per slot: PacedGreedy(k),
    run for run, in both engines (small memory: the cache fills and overflows)."""
    req = s.Workload.paper_4_1(0.95 * 4000 / 1353.3333 / 3).generate(3000, 5)
    a = s.simulate(req, CheckedFlow(3), 4000, horizon=3000, seed=5, engine=engine)
    b = s.simulate(req, s.PacedGreedy(3), 4000, horizon=3000, seed=5, engine=engine)
    assert a.raw.differences(b.raw) == ["control"]  # only PacedGreedy has no CONTROL record
    assert a.metrics().overflow_events > 0
    c = a.raw.control
    assert (c.budgeted_slots, c.mean_rate, c.switches) == (3000, 3.0, 0)


@pytest.mark.parametrize("budget", [0.5, 1.5, 2.25])
def test_checked_flow_admits_its_fractional_budget_and_engines_agree(budget):
    """Saturated (every request waiting from slot 0) with M large: exactly floor(T b) or
    one more admissions in T slots, never more than ceil(b) in a slot; the engines agree."""
    req = s.Workload.single(50.0, 10, s.UniformInt(5, 30)).generate(40, 1)
    req = s.Requests(np.zeros(len(req), np.int64), req.prompt, req.decode)
    T = 400
    fast = s.simulate(req, CheckedFlow(budget), 10**7, horizon=T, seed=1)
    ref = s.simulate(req, CheckedFlow(budget), 10**7, horizon=T, seed=1, engine="reference")
    assert fast.raw.differences(ref.raw) == [] and fast.raw.control == ref.raw.control
    starts = np.sort(fast.first_token[fast.first_token >= 0])
    assert len(starts) == min(len(req), math.floor(T * budget) + 1) or \
        len(starts) == min(len(req), math.floor(T * budget))
    assert np.bincount(starts).max() <= math.ceil(budget)


def test_policies_validate():
    with pytest.raises(ValueError, match="rate_floor <= rate_start"):
        AdaptiveFlow(rate_start=1.0)
    with pytest.raises(ValueError, match="rate_floor"):
        AdaptiveFlow(rate_floor=0.5)
    with pytest.raises(ValueError, match="period"):
        AdaptiveFlow(period=0)
    with pytest.raises(ValueError, match="budget"):
        PredictedFlow(-1)
    with pytest.raises(ValueError, match="horizon=None"):
        s.simulate(s.Requests([0], [1], [1]), PredictedFlow(0), 10, seed=0)
    with pytest.raises(ValueError, match="budget"):
        CheckedFlow(-0.5)
    with pytest.raises(ValueError, match="horizon=None"):
        s.simulate(s.Requests([0], [1], [1]), CheckedFlow(0), 10, seed=0)


def test_spec_round_trip_and_stream_refuses_predictions():
    from stability.policies import from_spec

    for pol in (AdaptiveFlow(), AdaptiveFlow(predictions=s.Predictions.noisy(0.5)),
                PredictedFlow(1234.5, s.Predictions.interval(0.3))):
        assert from_spec(pol.to_spec()) == pol
    with pytest.raises(ValueError, match="predicted lengths"):
        s.simulate_stream(s.Workload.paper_4_1(1.0), PredictedFlow(100), 1000, 10)


def test_command_line_needs_no_budget(capsys):
    from stability.cli import main

    assert main(["simulate", "--workload", "paper-4.1", "--rate", "2", "--memory", "16492",
                 "--policy", "adaptive", "--slots", "2000", "--stream"]) == 0
    assert "AdaptiveFlow" in capsys.readouterr().out
    assert main(["simulate", "--workload", "paper-4.1", "--rate", "2", "--memory", "16492",
                 "--policy", "flow-predicted", "--budget", "9000", "--predictions",
                 "noisy:0.5", "--slots", "500"]) == 0
    assert "PredictedFlow" in capsys.readouterr().out
    assert main(["simulate", "--workload", "paper-4.1", "--rate", "2", "--memory", "16492",
                 "--policy", "flow-predicted", "--budget", "9000", "--predictions", "exact",
                 "--slots", "500"]) == 0
    assert "PredictedFlow(budget=9000, predictions=Predictions(kind='exact'" in \
        capsys.readouterr().out


def test_command_line_reports_the_controller(capsys):
    """On the thrashing lattice (0.95 lambda*) the controller switches to a budget; the
    table and the JSON say so, and a stateless policy has no controller block."""
    import json

    from stability.cli import main

    args = ["simulate", "--workload", "paper-4.1", "--rate", "3.86", "--memory", "16492",
            "--slots", "20000"]
    assert main(args + ["--policy", "adaptive"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("controller:")]
    budgeted = int(line[0].split()[-5].rstrip(";"))
    assert len(line) == 1 and budgeted > 0
    assert main(args + ["--policy", "adaptive", "--json"]) == 0
    control = json.loads(capsys.readouterr().out)["control"]
    assert control["budgeted_slots"] == budgeted and control["switches"] >= 1
    assert 3.86 * 3 < control["mean_rate"] <= control["max_rate"]  # above lambda
    assert main(args + ["--policy", "greedy", "--json"]) == 0
    assert "control" not in json.loads(capsys.readouterr().out)


def test_command_line_sweep_runs_the_new_policies(tmp_path):
    """`stability sweep` on a TOML grid with the adaptive policy (no budget) and
    prediction-aware flow control with exact and noisy predictions."""
    from stability.cli import main
    from stability.store import load

    config = tmp_path / "a.toml"
    config.write_text("""
[sweep]
name = "a"
root_seed = 3
replications = 2
slots = 600
memory = [16492]

[[workload]]
kind = "paper-4.1"
load = 0.9

[[policy]]
kind = "adaptive"

[[policy]]
kind = "flow-predicted"
budget = 12000
predictions = ["exact", "noisy:0.3"]
""")
    assert main(["sweep", str(config), "--db", str(tmp_path / "a.sqlite"), "--workers", "1",
                 "--quiet"]) == 0
    policies = set(load(tmp_path / "a.sqlite")["policy"].tolist())
    assert len(policies) == 3 and any('"adaptive"' in p for p in policies)


def test_sweeps_run_the_new_policies(tmp_path):
    from stability.store import load
    from stability.sweep import Sweep, run_sweep

    sweep = Sweep("adaptive", ({"kind": "paper-4.1", "rate": 2.0},),
                  ({"kind": "adaptive"}, {"kind": "flow-predicted", "budget": 8000,
                                          "predictions": "exact"}),
                  (16492,), replications=2, root_seed=1, slots=500)
    report = run_sweep(sweep, tmp_path / "r.sqlite", progress=False)
    assert not report.failed
    assert len(load(tmp_path / "r.sqlite")["key"]) == 4


# ------------------------------------------------------------------------------ theory
def test_refusals_and_removals_never_exceed_the_relaxed_excess():
    """Exhaustively: refused + removed <= ceil((U - M)^+ / h) for U >= running + needs."""
    h, memory = 3, 20
    for running in range(0, 30):
        for k in range(0, 4):
            for needs in np.ndindex(*(5,) * k):
                needs = [h + x for x in needs]
                refused, removed = refusals_and_removals(running, needs, memory, h)
                u = running + sum(needs)
                assert refused + removed <= math.ceil(max(u - memory, 0) / h)


def test_budgeted_guarantee_on_the_section_4_1_classes():
    lam_star = 16492 / 1353.3333333
    w = s.Workload.paper_4_1(0.8 * lam_star / 3)
    g = budgeted_guarantee(w, 16492, 10.4)  # ceil = 11: E[U] = 14887 < M
    assert g.candidates == 11 and g.mean_demand == pytest.approx(11 * 1353.3333, rel=1e-6)
    assert 0 < g.overflow < 0.01 and g.certified and g.loss < 0.2
    bad = budgeted_guarantee(w, 16492, 12.5)  # ceil = 13: E[U] > M, nothing bounded
    assert bad.overflow == 1.0 and not bad.certified
    # k = 10: (max(9, lambda + r(10)), 10] with r(10) ~ 1e-7; k = 11: (10, 11] since
    # lambda + r(11) = 9.87 < 10; k = 12: r(12) ~ 93, empty.  Merged: (lambda + r(10), 11]
    r10 = loss_rate_bound(w, 10, 16492, "chernoff").loss
    assert 0 < r10 < 1e-6 and w.total_rate + g.loss < 10
    assert certified_budgets(w, 16492) == [(pytest.approx(w.total_rate + r10, abs=1e-9), 11.0)]
    assert certified_budgets(s.Workload.paper_4_1(0.95 * lam_star / 3), 16492) == []


def test_memory_time_window():
    w = s.Workload.paper_4_1(3.0)
    exact = memory_time_window(w, 16492)
    assert (exact.low, exact.high, exact.inflation) == (9 * 1353.3333333333333, 16492, 1.0)
    noisy = memory_time_window(w, 16492, s.Predictions.noisy(0.5), samples=100_000)
    assert noisy.inflation > 1.2 and noisy.predicted_error < 0.01 * noisy.mean_predicted
    est = predicted_overflow_bound(w, 16492, 0.9 * 16492, window=exact)
    assert est.admissions == pytest.approx(0.9 * 16492 / 1353.3333333)
    assert 0 < est.per_slot < 1
