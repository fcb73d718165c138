"""Trace loading and resampling (stability.workload.traces) on synthetic files, so the
tests need none of the public traces."""

import numpy as np
import pytest

from stability.workload.traces import load_trace, trace_workload


def _correlated_trace(path, n=4000, seed=3):
    """A processed-format trace where long decodes come with long prompts."""
    rng = np.random.default_rng(seed)
    decode = rng.integers(1, 200, n)
    prompt = 10 * decode + rng.integers(1, 50, n)
    seconds = np.cumsum(rng.exponential(0.1, n))
    lines = ["arrived_at,num_prefill_tokens,num_decode_tokens"]
    lines += [f"{s:.6f},{p},{o}" for s, p, o in zip(seconds, prompt, decode)]
    path.write_text("\n".join(lines) + "\n")
    return prompt, decode, seconds


def _joint_memory_time(prompt, decode):
    """E[w] = E[l o + o (o + 1) / 2] of the empirical joint law (docs/model.md 1)."""
    l, o = prompt.astype(float), decode.astype(float)
    return float(np.mean(l * o + o * (o + 1) / 2))


def test_joint_bins_keep_the_prompt_decode_dependence(tmp_path):
    path = tmp_path / "trace.csv"
    prompt, decode, seconds = _correlated_trace(path)
    exact = _joint_memory_time(prompt, decode)
    independent = trace_workload(path, joint_bins=1)
    binned = trace_workload(path, joint_bins=32)
    w_indep = sum(c.rate * c.mean_memory_time() for c in independent.classes) / independent.total_rate
    w_binned = sum(c.rate * c.mean_memory_time() for c in binned.classes) / binned.total_rate
    # Positive dependence: independence underestimates E[l o]; bins recover it to within
    # the within-bin spread (bins of ~6 decode values out of 199).
    assert w_indep < 0.8 * exact
    assert abs(w_binned - exact) < 0.01 * exact
    # Rates: the bins split the trace's own mean rate in proportion to their counts.
    slots = (seconds.max() - seconds.min()) / 0.05
    assert binned.total_rate == pytest.approx(prompt.size / slots)
    assert independent.total_rate == pytest.approx(binned.total_rate)
    assert binned.num_classes == 32


def test_joint_bins_resample_the_joint_law(tmp_path):
    """Generated requests keep the dependence: corr(l, o) near the trace's, not near 0."""
    path = tmp_path / "trace.csv"
    prompt, decode, _ = _correlated_trace(path)
    requests = trace_workload(path, rate=2.0).generate(20_000, seed=1)
    r_trace = np.corrcoef(prompt, decode)[0, 1]
    r_drawn = np.corrcoef(requests.prompt, requests.decode)[0, 1]
    assert r_trace > 0.99
    assert r_drawn > 0.95


@pytest.mark.parametrize("bins, message", [(0, "joint_bins"), (1.5, "joint_bins"),
                                           ("4", "joint_bins")])
def test_joint_bins_bad_input(tmp_path, bins, message):
    path = tmp_path / "trace.csv"
    _correlated_trace(path, n=50)
    with pytest.raises(ValueError, match=message):
        trace_workload(path, joint_bins=bins)


def test_more_bins_than_requests_is_one_class_per_request(tmp_path):
    path = tmp_path / "trace.csv"
    _correlated_trace(path, n=7)
    assert trace_workload(path, joint_bins=100).num_classes == 7


def test_load_trace_maps_seconds_to_slots(tmp_path):
    path = tmp_path / "trace.csv"
    prompt, decode, seconds = _correlated_trace(path, n=100)
    requests = load_trace(path, slot_seconds=0.05, time_scale=2.0)
    expected = np.floor((seconds - seconds.min()) * 2.0 / 0.05).astype(np.int64)
    np.testing.assert_array_equal(requests.arrival, expected)
    np.testing.assert_array_equal(requests.prompt, prompt)
    np.testing.assert_allclose(requests.arrival_time, (seconds - seconds.min()) * 2.0,
                               rtol=0, atol=1e-5)
