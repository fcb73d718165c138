"""Bad input of every kind gets an error naming the field, the value and what is allowed."""

import subprocess
import sys

import pytest

import stability as s
from stability.traces import load_trace


@pytest.mark.parametrize("arrays, message", [
    (([0, -1], [1, 1], [1, 1]), r"arrival\[1\] = -1 is not allowed; arrival must be >= 0"),
    (([0, 1], [1, 0], [1, 1]), r"prompt\[1\] = 0 is not allowed; prompt must be >= 1"),
    (([0, 1], [1, 1], [3, 0]), r"decode\[1\] = 0 is not allowed; decode must be >= 1"),
    (([0, 1], [1, 1], [1]), r"decode has length 1, but arrival has length 2"),
    (([0, 1.5], [1, 1], [1, 1]), r"arrival\[1\] = 1.5 is not allowed; arrival must hold integers"),
    (([[0]], [1], [1]), r"arrival must be a one-dimensional array"),
])
def test_requests_validation(arrays, message):
    with pytest.raises(ValueError, match=message):
        s.Requests(*arrays)


def test_class_id_validation():
    with pytest.raises(ValueError, match=r"class_id\[0\] = -2 is not allowed"):
        s.Requests([0], [1], [1], [-2])


def test_request_that_can_never_fit_is_named():
    req = s.Requests([0, 0, 3], [5, 10, 2], [5, 95, 3])
    with pytest.raises(ValueError, match=r"request 1 has prompt l=10 and decode o=95, so "
                                         r"l \+ o = 105 exceeds the KV capacity M=100"):
        s.simulate(req, s.Greedy(), 100)


@pytest.mark.parametrize("make, message", [
    (lambda: s.FlowControl(2.5, law="deterministic"),
     r"budget=2.5 is not allowed for law='deterministic'"),
    (lambda: s.FlowControl(-1), r"budget must be a finite number >= 0, got -1"),
    (lambda: s.FlowControl(3, law="uniform"), r"law must be one of"),
    (lambda: s.FlowControl(float("nan"), law="poisson"), r"budget must be a finite number"),
    (lambda: s.ClassBudgets((4, -1)), r"budgets\[1\] must be an integer >= 0, got -1"),
    (lambda: s.ClassBudgets(()), r"budgets must hold one integer"),
    (lambda: s.Greedy(1.0), r"watermark must be a finite number >= 0 and < 1, got 1.0"),
    (lambda: s.Greedy(max_num_seqs=8, max_num_batched_tokens=4),
     r"max_num_batched_tokens=4 needs max_num_seqs <= it"),
    (lambda: s.clock.Linear(c0=-1.0), r"c0 must be a finite number >= 0, got -1.0"),
    (lambda: s.clock.Linear(), r"a Linear clock needs a coefficient > 0"),
    (lambda: s.Conservative(0), r"max_decode must be an integer >= 1, got 0"),
    (lambda: s.Geometric(0.0), r"p must be a probability in \(0, 1\]"),
    (lambda: s.UniformInt(5, 2), r"high must be >= low=5, got 2"),
    (lambda: s.Deterministic(0), r"value must be an integer >= 1, got 0"),
    (lambda: s.LogNormal(1.0, -1.0, 10), r"sigma must be > 0"),
    (lambda: s.Empirical([3, 0]), r"samples\[1\] = 0 is not allowed"),
    (lambda: s.RequestClass(-1.0, 1, 1), r"rate must be a finite number >= 0, got -1.0"),
    (lambda: s.Workload(()), r"classes must hold at least one RequestClass"),
])
def test_parameter_objects_validate(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("kwargs, message", [
    (dict(memory=1), r"memory must be an integer >= 2, got 1"),
    (dict(memory=100, horizon=-3), r"horizon must be an integer >= 0 and <= 10+ or None, got -3"),
    (dict(memory=100, engine="gpu"), r"engine must be one of fast, reference, got 'gpu'"),
    (dict(memory=100, eviction="forget"), r"eviction must be one of restart, recompute"),
    (dict(memory=100, requeue="back"), r"requeue must be one of arrival, front, got 'back'"),
    (dict(memory=100, block_size=0), r"block_size must be an integer >= 1, got 0"),
    (dict(memory=100, clock="fast"), r"clock must be a stability.clock.Clock"),
    (dict(memory=100, seed=-1), r"seed must be an integer >= 0, got -1"),
    (dict(memory=100, warmup=1.5), r"warmup must be an integer >= 0, got 1.5"),
])
def test_simulate_arguments(kwargs, message):
    req = s.Requests([0], [1], [1])
    with pytest.raises(ValueError, match=message):
        s.simulate(req, s.Greedy(), **kwargs)


def test_simulate_rejects_wrong_types():
    with pytest.raises(ValueError, match="requests must be a stability.Requests"):
        s.simulate([1, 2], s.Greedy(), 100)
    with pytest.raises(ValueError, match="policy must be a policy object"):
        s.simulate(s.Requests([0], [1], [1]), "greedy", 100)
    with pytest.raises(ValueError, match="workload must be a stability.Workload"):
        s.simulate_stream("paper", s.Greedy(), 100, 10)


def test_runs_that_could_never_end_need_a_horizon():
    req = s.Requests([0, 0], [3, 3], [2, 2], [0, 1])
    with pytest.raises(ValueError, match="FlowControl budget=0 never"):
        s.simulate(req, s.FlowControl(0), 100)
    with pytest.raises(ValueError, match="class 1 has budget 0"):
        s.simulate(req, s.ClassBudgets((1, 0)), 100)
    with pytest.raises(ValueError, match="never fits under the watermark cap 3"):
        s.simulate(req, s.Greedy(0.7), 10)
    with pytest.raises(ValueError, match="never fits with max_decode=8 in M=10"):
        s.simulate(req, s.Conservative(8), 10)
    with pytest.raises(ValueError, match="budgets has 1 entries but the requests have 2"):
        s.simulate(req, s.ClassBudgets((1,)), 100)
    # with a horizon they are legitimate runs
    assert s.simulate(req, s.FlowControl(0), 100, horizon=5).metrics().completed == 0


@pytest.mark.parametrize("content, message", [
    ("", r"line 1: the file is empty"),
    ("a,b,c\n1,2,3\n", r"line 1: unrecognised header"),
    ("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,5,6\n1.0,x,3\n",
     r"line 3: column num_prefill_tokens: 'x' is not an integer"),
    ("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,5,6\n-1.0,2,3\n",
     r"line 3: column arrived_at: '-1.0' is not a number of seconds >= 0"),
    ("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,5,0\n",
     r"line 2: column num_decode_tokens: 0 must be >= 1"),
    ("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,5\n",
     r"line 2: expected 3 columns, got 2"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,5,6\n",
     r"line 2: column TIMESTAMP: 'yesterday' is not a date and time"),
    ("arrived_at,num_prefill_tokens,num_decode_tokens\n", r"holds a header but no requests"),
])
def test_malformed_trace_files(tmp_path, content, message):
    path = tmp_path / "trace.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        load_trace(path)
    assert str(path) in str(err.value)


def test_trace_rate_rules(tmp_path):
    lengths = tmp_path / "lengths.csv"
    lengths.write_text("num_prefill_tokens,num_decode_tokens\n5,6\n7,8\n")
    with pytest.raises(ValueError, match="holds lengths only; give rate"):
        load_trace(lengths)
    timed = tmp_path / "timed.csv"
    timed.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n0,5,6\n")
    with pytest.raises(ValueError, match="rate must be None"):
        load_trace(timed, rate=1.0)
    with pytest.raises(ValueError, match="slot_seconds must be a finite number > 0"):
        load_trace(timed, slot_seconds=0)


@pytest.mark.parametrize("args, message", [
    (["simulate", "--policy", "flow"], "--policy flow needs --budget"),
    (["simulate", "--policy", "classes", "--budgets", "4,x"],
     "--budgets '4,x': budgets must be comma-separated integers"),
    (["simulate", "--workload", "synthetic", "--rate", "1", "--decode", "zipf:2",
      "--policy", "greedy"], "--decode: 'zipf:2' is not a length law"),
    (["simulate", "--policy", "flow", "--budget", "4", "--watermark", "0.1"],
     "--watermark does not apply to --policy flow (it takes --budget, --budget-law)"),
    (["simulate", "--policy", "greedy", "--clock", "sundial"], "--clock 'sundial'"),
    (["simulate", "--policy", "greedy", "--clock", "jaillet"], "needs --seconds"),
    (["simulate", "--policy", "greedy", "--memory", "1"], "memory must be an integer >= 2"),
    (["simulate", "--trace", "/nonexistent.csv", "--policy", "greedy"], "does not exist"),
    (["simulate", "--policy", "greedy", "--rate", "1", "--load", "0.5"], "not both"),
])
def test_cli_errors_are_one_line(args, message):
    out = subprocess.run([sys.executable, "-m", "stability.cli", *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stability: error:"), out.stderr
    assert message in lines[0]
