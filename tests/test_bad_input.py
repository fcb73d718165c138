"""Bad input as a new user meets it: one line ``stability: error: ...`` on stderr, exit
status 2, nothing written (issue 13).  Also the other side of the same promises: honest
estimates for long streams, readable stores on read-only file systems, Ctrl-C reported as
partial, JSON without string infinities."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import stability as s
from stability import validation
from stability.cli import main

ROOT = Path(__file__).resolve().parents[1]

TOML = """[sweep]
name = "bad"
root_seed = 1
replications = 2
slots = {slots}
memory = [16492]
[[workload]]
kind = "paper-4.1"
rate = 3
[[policy]]
kind = "flow"
budget = 12
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An empty working directory; the test checks it stays empty."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def fails(capsys, argv, *needles) -> str:
    """Run the CLI: exit 2 and exactly one line ``stability: error: ...`` naming needles."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("stability: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


def listing(path: Path) -> list:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# ---------------------------------------------------------------- sizes, checked first
@pytest.mark.parametrize("argv, needles", [
    (["--rate", "1e9", "--slots", "100"], ("available", "not even one slot fits")),
    (["--slots", "1000000000000000"], ("1000000000000000 slots", "slots fit", "--stream")),
    (["--slots", "9223372036854775808"], ("--slots must be an integer",)),
    (["--rate", "1e9", "--stream"], ("one slot's arrivals", "lower the arrival rate")),
    (["--slots", "-5"], ("--slots must be an integer >= 0",)),
])
def test_runs_that_cannot_fit_are_refused_before_allocating(here, capsys, argv, needles):
    fails(capsys, ["simulate", "--budget", "12", *argv], *needles)
    assert listing(here) == []


def test_sizes_say_what_fits_from_python(monkeypatch):
    monkeypatch.setattr(validation, "available_bytes", lambda: 10**6)
    w = s.Workload.paper_4_1(3.0)
    with pytest.raises(ValueError, match=r"at this rate about .* slots fit"):
        w.generate(100_000, 0)
    with pytest.raises(ValueError, match=r"simulating 300 requests needs"):
        monkeypatch.setattr(validation, "available_bytes", lambda: 1000)
        s.simulate(s.Requests([0] * 300, [10] * 300, [20] * 300), s.Greedy(), 16492)
    monkeypatch.setattr(validation, "available_bytes", lambda: None)  # unknown: no check
    assert len(w.generate(10, 0)) >= 0


def test_huge_slot_counts_are_refused_by_the_api():
    w = s.Workload.paper_4_1(3.0)
    with pytest.raises(ValueError, match=r"slots must be an integer >= 0 and <= 10+"):
        s.simulate_stream(w, s.FlowControl(12), 16492, slots=2**63)
    with pytest.raises(ValueError, match=r"horizon must be an integer"):
        s.simulate(w.generate(10, 0), s.FlowControl(12), 16492, horizon=2**63)


@pytest.mark.parametrize("slots", ["1000000000000000", "1e15"])
def test_sweep_config_too_large_for_memory(here, capsys, slots):
    (here / "big.toml").write_text(TOML.format(slots=slots))
    fails(capsys, ["sweep", "big.toml"], "sweep.slots", "available", "--stream")
    assert listing(here) == ["big.toml"]  # no results/ directory, no store


def test_long_stream_announces_its_estimate_and_progress(monkeypatch, caplog):
    """A stream projected to take long says so after its first second, on the
    ``stability`` logger; Ctrl-C (here: the stop event) ends it with what was done."""
    import importlib

    sim = importlib.import_module("stability.simulate")  # the module, not the function
    monkeypatch.setattr(sim, "LONG_RUN_SECONDS", 0.0)
    monkeypatch.setattr(sim._Progress, "EVERY", 0.5)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    stop = threading.Event()
    threading.Timer(2.5, stop.set).start()
    with caplog.at_level(logging.WARNING, logger="stability"):
        r = s.simulate_stream(s.Workload.paper_4_1(3.0), s.FlowControl(12), 16492,
                              slots=10**15, seed=1, stop=stop)
    assert r.interrupted and 0 < r.slots < 10**15
    messages = [rec.getMessage() for rec in caplog.records]
    assert any("1000000000000000 slots at" in m and "about" in m and "years" in m
               for m in messages), messages
    assert any("of 1000000000000000 slots" in m and "left" in m for m in messages), messages


# ------------------------------------------------------------------- silent acceptance
@pytest.mark.parametrize("argv, needles", [
    (["--slot-seconds", "0"], ("--slot-seconds must be a finite number > 0",)),
    (["--time-scale", "-1"], ("--time-scale",)),
    (["--warmup", "5000", "--slots", "2000"], ("--warmup 5000 must be smaller than --slots 2000",)),
    (["--memory", "60", "--stream"], ("l + o up to 70", "M=60", "could never complete")),
    (["--memory", "60"], ("l + o = 70", "M=60")),
    (["--memory", "1"], ("--memory must be an integer >= 2",)),
    (["--rate", "-1"], ("--rate must be a finite number >= 0",)),
])
def test_silently_accepted_input_is_refused(here, capsys, argv, needles):
    fails(capsys, ["simulate", "--budget", "12", *argv], *needles)
    assert listing(here) == []


def test_one_memory_rule_everywhere(capsys):
    fails(capsys, ["analyze", "--memory", "1", "--rate", "1"], "--memory must be an integer >= 2")
    from stability.theory import analyze, overflow_bound
    from stability.theory.rare import overflow_probability_is

    w = s.Workload.paper_4_1(1.0)
    for call in (lambda: overflow_bound(w, 3, 1), lambda: analyze(w, 1),
                 lambda: overflow_probability_is(w, 3, 1, samples=10),
                 lambda: s.simulate(s.Requests([0], [1], [1]), s.Greedy(), 1)):
        with pytest.raises(ValueError, match="memory must be an integer >= 2"):
            call()


def test_stream_warmup_must_leave_measured_slots():
    with pytest.raises(ValueError, match="warmup must be smaller than slots = 100"):
        s.simulate_stream(s.Workload.paper_4_1(1.0), s.FlowControl(12), 16492, 100,
                          warmup=100)


def test_unbounded_laws_report_their_rejected_arrivals(capsys):
    """Geometric decode lengths can exceed M: the stream counts those arrivals, and both
    the table and the JSON show them."""
    argv = ["simulate", "--workload", "synthetic", "--rate", "0.5", "--prompt", "det:5",
            "--decode", "geom-mean:10", "--policy", "greedy", "--memory", "20", "--stream",
            "--slots", "5000"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "rejected:" in out and "arrivals had l + o > M = 20" in out
    assert err.startswith("stability: warning: ") and len(err.strip().splitlines()) == 1
    assert main([*argv, "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["run"]
    assert run["rejected"] > 0 and run["interrupted"] is False


# ------------------------------------------------------------------------- trace files
def test_trace_errors_name_the_file(here, capsys, tmp_path):
    fails(capsys, ["simulate", "--budget", "12", "--trace", str(tmp_path)], "is a directory")
    binary = tmp_path / "trace.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    fails(capsys, ["simulate", "--budget", "12", "--trace", str(binary)], str(binary),
          "not a text CSV file")
    fails(capsys, ["simulate", "--budget", "12", "--trace", str(tmp_path / "none.csv")],
          "does not exist")


def test_stability_traces_must_exist(here, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("STABILITY_TRACES", "/nonexistent")
    fails(capsys, ["simulate", "--workload", "azure-conv", "--rate", "0.1", "--budget", "1",
                   "--slots", "100"], "STABILITY_TRACES=/nonexistent: no such directory")
    monkeypatch.setenv("STABILITY_TRACES", str(tmp_path))
    fails(capsys, ["simulate", "--workload", "azure-conv", "--rate", "0.1", "--budget", "1",
                   "--slots", "100"], "azure_conv_2023.csv is not there")


def test_missing_trace_warns_in_one_line(capsys, monkeypatch):
    from stability.workload import traces

    monkeypatch.delenv("STABILITY_TRACES", raising=False)
    monkeypatch.setattr(traces, "azure_trace_path", lambda name: None)
    assert main(["simulate", "--workload", "azure-conv", "--rate", "0.1", "--budget", "1",
                 "--slots", "100"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stability: warning: "), err
    assert "synthetic stand-in" in err[0]


def test_trace_reader_is_numpy_and_keeps_line_errors(tmp_path):
    from stability.workload import traces

    good = tmp_path / "good.csv"
    good.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10,5\n\n1.5,20,6\n")
    fmt, prompt, decode, seconds = traces._read(good)
    assert fmt == "processed" and prompt.tolist() == [10, 20] and seconds.tolist() == [0, 1.5]
    bad = tmp_path / "bad.csv"
    bad.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10,5\n1.5,x,6\n")
    with pytest.raises(ValueError, match=r"bad.csv: line 3: column num_prefill_tokens: 'x'"):
        traces._read(bad)


# -------------------------------------------------------------------------- usage errors
def test_usage_errors_are_one_line(capsys):
    fails(capsys, ["simulate", "--bogus"], "unrecognized arguments: --bogus")
    fails(capsys, ["simulate", "--policy", "nope"], "invalid choice")
    fails(capsys, ["nothing"], "invalid choice")


def test_a_negative_value_is_a_value(capsys):
    fails(capsys, ["simulate", "--policy", "classes", "--budgets", "-1,4,4"],
          "budgets[0] must be an integer >= 0, got -1")


# ----------------------------------------------------------------- read-only places
@pytest.fixture
def readonly_dir(tmp_path):
    """A directory this process cannot write: a read-only tmpfs when running as root
    (which ignores permissions), else a directory without write permission."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() != 0:
        def seal():
            target.chmod(0o555)
        yield target, seal
        target.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(target)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot make a read-only directory here (root without mount)")

    def seal():
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
    try:
        yield target, seal
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


def _store(path: Path) -> None:
    from stability.sweep import Sweep, run_sweep

    import tomllib

    sweep = Sweep.from_dict(tomllib.loads(TOML.format(slots=500)))
    run_sweep(sweep, path, executor=_Inline(), progress=False)


class _Inline:
    def submit(self, fn, *args, **kwargs):
        from concurrent.futures import Future

        f = Future()
        f.set_result(fn(*args, **kwargs))
        return f


def test_read_only_places(readonly_dir, capsys, monkeypatch):
    ro, seal = readonly_dir
    _store(ro / "runs.sqlite")
    (ro / "bad.toml").write_text(TOML.format(slots=500))
    seal()
    before = listing(ro)
    monkeypatch.chdir(ro)
    fails(capsys, ["sweep", "bad.toml"], "results/bad.sqlite", "cannot write")
    fails(capsys, ["sweep", "bad.toml", "--db", "other.sqlite"], "other.sqlite", "cannot write")
    fails(capsys, ["sweep", "bad.toml", "--db", "runs.sqlite"], "read-only")
    fails(capsys, ["results", "export", "runs.sqlite", "--csv", "out.csv"], "out.csv",
          "cannot write")
    fails(capsys, ["results", "summary", "runs.sqlite", "--csv", "out.csv"], "out.csv")
    fails(capsys, ["reproduce", "--smoke", "--output", str(ro / "out")], "--output",
          "cannot write")
    # a valid store on a read-only file system can be read
    assert main(["results", "summary", "runs.sqlite"]) == 0
    assert "latency_mean" in capsys.readouterr().out
    assert main(["results", "export", "runs.sqlite", "--csv", "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert s.store.load(ro / "runs.sqlite")["key"].size == 2
    assert listing(ro) == before


def test_unreachable_dask_scheduler(here, capsys, monkeypatch):
    pytest.importorskip("distributed")
    import stability.cli.sweep as sweep_cli

    monkeypatch.setattr(sweep_cli, "CONNECT_SECONDS", 1)
    (here / "s.toml").write_text(TOML.format(slots=500))
    began = time.perf_counter()
    fails(capsys, ["sweep", "s.toml", "--dask", "tcp://127.0.0.1:1"],
          "--dask tcp://127.0.0.1:1: cannot reach a Dask scheduler")
    assert time.perf_counter() - began < 20
    assert listing(here) == ["s.toml"]


# ----------------------------------------------------------------------- outputs
def test_results_summary_json_and_csv(tmp_path, capsys):
    db = tmp_path / "runs.sqlite"
    _store(db)
    assert main(["results", "summary", str(db), "--json", "--metric", "latency_mean",
                 "--metric", "overflow_rate"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 1 and records[0]["runs"] == 2
    assert set(records[0]["metrics"]["latency_mean"]) == {"mean", "std", "n", "ci_low",
                                                          "ci_high", "half_width"}
    assert main(["results", "summary", str(db), "--csv", str(tmp_path / "sum.csv")]) == 0
    lines = (tmp_path / "sum.csv").read_text().splitlines()
    assert len(lines) == 2 and "latency_mean_ci_low" in lines[0]


def test_json_has_no_string_infinities(capsys):
    assert main(["analyze", "--rate", "5", "--memory", "16492", "--budget", "12",
                 "--json"]) == 0
    text = capsys.readouterr().out
    json.loads(text)
    assert '"inf"' not in text and '"-inf"' not in text and "Infinity" not in text
    assert main(["simulate", "--budget", "0", "--slots", "50", "--json"]) == 0
    text = capsys.readouterr().out
    assert json.loads(text)["metrics"]["latency"]["mean"] is None  # nan: null


def test_results_json_round_trips_infinities():
    from experiments.common import dumps, unjson

    text = dumps({"a": float("inf"), "b": [float("-inf"), 1.5], "c": float("nan"),
                  "text": "Infinity stays text"})
    assert '"inf"' not in text and "Infinity," not in text
    back = unjson(json.loads(text))
    assert back["a"] == float("inf") and back["b"][0] == float("-inf") and back["c"] is None
    assert back["text"] == "Infinity stays text"


# ----------------------------------------------------------------------- Ctrl-C
@pytest.mark.slow
def test_ctrl_c_on_a_stream_exits_130_and_says_partial():
    """Ctrl-C once the stream runs (its progress bar has started: imports and kernel
    compilation are over)."""
    import selectors

    # the child starts with SIGINT's default action even when this suite runs where it is
    # ignored (a background job of a non-interactive shell): Python then installs no handler
    proc = subprocess.Popen([sys.executable, "-m", "stability", "simulate", "--budget", "12",
                             "--stream", "--slots", "1000000000000", "--progress"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    deadline = time.time() + 240
    while b"slot/s" not in seen and b"slots/s" not in seen and time.time() < deadline:
        if sel.select(timeout=1.0):
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    assert b"slot" in seen, seen
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    out, err = out.decode(), seen.decode() + err.decode()
    assert proc.returncode == 130, err
    assert "PARTIAL" in out and "the metrics cover those slots only" in out
    assert "stability: interrupted: the metrics above are partial" in err
