"""The Section 4.2 experiment's inputs and rows (experiments.section42)."""

import numpy as np
import pytest

from experiments import section42 as s42
from stability.workload.traces import azure_trace_path


def test_chunks_have_the_requested_rate_and_keep_the_trace_order():
    rate = 0.5
    a = s42.chunk_requests("conv", rate, 300, 0)
    b = s42.chunk_requests("conv", rate, 300, 1)
    replayed = azure_trace_path("conv") is not None  # else a Poisson stand-in
    for req in (a, b):
        t = req.arrival_time
        assert (np.diff(t) >= 0).all() and (t[0] == 0 if replayed else t[0] > 0)
        # mean rate over the chunk: (n - 1) gaps in the span (trace) or Poisson (stand-in)
        assert (len(req) - 1) / t[-1] == pytest.approx(rate, rel=0.2)
    assert not np.array_equal(a.decode, b.decode)  # disjoint chunks / independent replays


def test_tuning_replay_is_independent_of_the_reported_chunks():
    tune = s42.tuning_requests("code", 0.5, 300)
    chunk = s42.chunk_requests("code", 0.5, 300, 0)
    assert not np.array_equal(tune.arrival_time[:50], chunk.arrival_time[:50])


def _cell(world, load, flow, vllm, metric, trace="conv", memory=16492):
    runs = {m: [1.0, 1.0, 1.0] for m in s42.METRICS}
    f, g = dict(runs), dict(runs)
    f[metric], g[metric] = list(flow), list(vllm)
    return {"trace": trace, "memory": memory, "world": world, "load": load,
            "tuned": {"multiplier": 1.5}, "runs": {s42.FLOW: f, s42.BASELINE: g}}


def _results(cells, critical=1.0):
    return {"cells": cells, "info": {"conv": {"critical": {"16492": {"per_second": critical}}}}}


def _row(rows, words):
    hits = [r for r in rows if words in r.claim]
    assert len(hits) == 1, [r.claim for r in rows]
    return hits[0]


@pytest.mark.parametrize("flow, vllm, expected", [([1, 2, 3], [5, 6, 7.5], "PASS"),
                                                  ([5, 6, 7.5], [1, 2, 3], "FAIL"),
                                                  ([1, 2, 3], [1.1, 1.9, 3.1], "FAIL")])
def test_latency_row_passes_and_fails(flow, vllm, expected):
    rows = s42.verify(_results([_cell("vllm", 0.6, flow, vllm, "e2e_mean")]))
    assert _row(rows, "lower mean end-to-end latency").verdict == expected


def test_throughput_row_and_bound_row():
    good = _cell("vllm", 1.1, [0.9, 0.95, 0.92], [0.8, 0.82, 0.85], "request_throughput")
    rows = s42.verify(_results([good]))
    assert _row(rows, "higher request throughput").verdict == "PASS"
    assert _row(rows, "faster than the critical rate").verdict == "PASS"
    rows = s42.verify(_results([good], critical=0.9))  # a replication above the bound
    assert _row(rows, "faster than the critical rate").verdict == "FAIL"
    bad = _cell("vllm", 1.1, [0.8, 0.82, 0.85], [0.9, 0.95, 0.92], "request_throughput")
    assert _row(s42.verify(_results([bad])), "higher request throughput").verdict == "FAIL"


def test_no_bound_row_without_an_overloaded_cell():
    rows = s42.verify(_results([_cell("vllm", 0.6, [1, 2, 3], [5, 6, 7], "e2e_mean")]))
    assert not [r for r in rows if "critical rate" in r.claim]


@pytest.mark.parametrize("adaptive, expected", [([50, 61, 55], "PASS"),  # near FC's 50-60
                                                ([80, 90, 85], "FAIL"),  # far above
                                                ([40, 75, 60], "INCONCLUSIVE")])  # noisy
def test_issue_12_rows_in_seconds_pass_and_fail(adaptive, expected):
    """Adaptive's e2e latency against the better of Greedy (here 100-120) and tuned flow
    control (50-60), paired over the chunks; CheckedFlow's and TwinFlow's rows on the same
    numbers give the same verdict."""
    cell = _cell("restart", 0.6, [1, 2, 3], [5, 6, 7.5], "e2e_mean")
    runs = cell["runs"]
    for metric in ("e2e_mean", "e2e_p95"):
        runs[s42.FLOW][metric] = [50.0, 60.0, 55.0]
    base = {m: list(v) for m, v in runs[s42.FLOW].items()}
    runs[s42.GREEDY] = dict(base, e2e_mean=[100.0, 120.0, 110.0], e2e_p95=[100.0, 120.0, 110.0])
    runs[s42.ADAPTIVE] = dict(base, e2e_mean=list(map(float, adaptive)),
                              e2e_p95=list(map(float, adaptive)))
    runs[s42.CHECKED] = dict(base, e2e_mean=list(map(float, adaptive)),
                             e2e_p95=list(map(float, adaptive)))
    runs[s42.TWIN] = dict(base, e2e_mean=list(map(float, adaptive)),
                          e2e_p95=list(map(float, adaptive)))
    rows = s42.verify(_results([cell]))
    assert _row(rows, "adaptive flow control's mean and p95").verdict == expected
    assert _row(rows, "budgeted mode at a tuned budget").verdict == expected
    assert _row(rows, "twin-tuned flow control").verdict == expected
    # above the critical rate the rows have no cell
    cell["load"] = 1.1
    assert not [r for r in s42.verify(_results([cell])) if "adaptive flow" in r.claim]
