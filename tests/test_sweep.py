"""Sweeps and the results store: determinism across executors, common random numbers,
resume after SIGKILL, refusal of foreign files, config errors, confidence intervals."""

import csv
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from stability import cli, store as st
from stability.policies import from_spec
from stability.sweep import Sweep, WorkloadSpec, load_config, run_sweep, run_task, task_seed

TINY = {
    "sweep": {"name": "tiny", "root_seed": 7, "replications": 2, "slots": 300, "warmup": 20,
              "memory": [2000]},
    "workload": [{"kind": "paper-4.1", "rate": [0.5, 0.8]},
                 {"kind": "synthetic", "load": 0.9, "prompt": "det:5",
                  "decode": "uniform:1:30"}],
    "policy": [{"kind": "flow", "budget": 2}, {"kind": "greedy"},
               {"kind": "flow", "budget": 1.5, "law": "poisson"}],
}
# The columns that must agree bit for bit between any two runs of the same task.
RESULT_COLUMNS = [c for c in st.COLUMNS if c not in ("seconds", "finished")]


def write_toml(path: Path, config: dict) -> Path:
    """A minimal TOML writer for the configs of these tests."""
    def value(v):
        if isinstance(v, str):
            return '"' + v + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = ["[sweep]"] + [f"{k} = {value(v)}" for k, v in config["sweep"].items()]
    for table in ("workload", "policy"):
        for item in config.get(table, []):
            lines += ["", f"[[{table}]]"] + [f"{k} = {value(v)}" for k, v in item.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_same_rows(a: dict, b: dict) -> None:
    """Identical runs: same keys in the same order and every result column equal exactly."""
    assert list(a["key"]) == list(b["key"])
    for col in RESULT_COLUMNS + ["metrics"]:
        x, y = a[col], b[col]
        if x.dtype == object:
            assert list(x) == list(y), col
        else:
            assert np.array_equal(x, y, equal_nan=True), col


@pytest.fixture(scope="module")
def tiny_sweep():
    return Sweep.from_dict(TINY)


@pytest.fixture(scope="module")
def reference_db(tmp_path_factory, tiny_sweep):
    """The tiny sweep run serially in this process (a one-thread executor)."""
    db = tmp_path_factory.mktemp("ref") / "tiny.sqlite"
    with ThreadPoolExecutor(1) as pool:
        report = run_sweep(tiny_sweep, db, executor=pool, progress=False)
    assert (report.total, report.added, report.failed) == (18, 18, ())
    return db


# ------------------------------------------------------------------------ specs, seeds
def test_specs_are_canonical():
    assert WorkloadSpec("paper-4.1", rate=4).canonical() == \
        WorkloadSpec("paper-4.1", rate=4.0).canonical() == '{"kind":"paper-4.1","rate":4.0}'
    assert from_spec({"kind": "flow", "budget": 12.0}).to_spec() == {
        "kind": "flow", "budget": 12, "law": "deterministic"}
    assert from_spec({"kind": "flow", "budget": 1.5}).law == "two-point"
    assert WorkloadSpec("synthetic", rate=1).to_dict() == {
        "kind": "synthetic", "rate": 1.0, "prompt": "det:10", "decode": "geom-mean:40"}
    azure = WorkloadSpec("azure-conv", load=0.9, source="synthetic")
    assert azure.to_dict() == {"kind": "azure-conv", "load": 0.9, "source": "synthetic"}
    w = azure.build(16492)  # load is a fraction of the critical load M / E[w]
    assert math.isclose(w.mean_kv_load(), 0.9 * 16492, rel_tol=1e-12)


def test_common_random_numbers(tiny_sweep):
    tasks = tiny_sweep.tasks()
    assert len(tasks) == 2 * 3 * 3 * 1 and len({t.key for t in tasks}) == len(tasks)
    by_point = {}
    for t in tasks:
        by_point.setdefault((t.workload.canonical(), t.replication), set()).add(t.seed)
    # every policy at a workload point and replication shares one seed ...
    assert all(len(seeds) == 1 for seeds in by_point.values())
    # ... and points and replications get distinct seeds
    assert len({next(iter(s)) for s in by_point.values()}) == len(by_point)
    # the seed is the SeedSequence child addressed by (point hash, replication)
    w = tiny_sweep.workloads[0]
    assert task_seed(7, w, 1) == next(t.seed for t in tasks
                                      if t.workload == w and t.replication == 1)
    assert task_seed(7, w, 1) != task_seed(8, w, 1)
    # paired runs see the same arrivals: identical arrival counts across policies
    point = [t for t in tasks if t.workload == w and t.replication == 0]
    arrived = {run_task(t)["metrics"]["arrived"] for t in point}
    assert len(arrived) == 1
    expected = w.build(2000).generate(300, point[0].seed).arrival
    assert arrived == {int(np.sum(expected >= 20))}


def test_seeds_survive_growing_the_sweep():
    """Adding points or replications keeps every existing task (seed and key)."""
    small = Sweep.from_dict(TINY)
    bigger = dict(TINY, sweep=dict(TINY["sweep"], replications=3))
    bigger["workload"] = [{"kind": "paper-4.1", "rate": [0.3, 0.5, 0.8]}] + TINY["workload"][1:]
    assert {t.key for t in small.tasks()} < {t.key for t in Sweep.from_dict(bigger).tasks()}


def test_stream_engine_matches_batch():
    base = dict(TINY, workload=TINY["workload"][:1])
    rows = {}
    for engine in ("batch", "stream"):
        sweep = Sweep.from_dict(dict(base, sweep=dict(TINY["sweep"], engine=engine)))
        rows[engine] = [run_task(t)["metrics"] for t in sweep.tasks()[:3]]
    for a, b in zip(rows["batch"], rows["stream"]):
        for name, x in a.items():
            assert x == b[name] or (math.isnan(x) and math.isnan(b[name])) \
                or math.isclose(x, b[name], rel_tol=1e-9), name


# ------------------------------------------------------------------------- executors
@pytest.mark.parametrize("workers", [1, 2])
def test_identical_results_on_local_pools(tmp_path, tiny_sweep, reference_db, workers):
    expected = st.load(reference_db)
    assert len(expected["key"]) == 18
    db = tmp_path / f"pool{workers}.sqlite"
    report = run_sweep(tiny_sweep, db, workers=workers, progress=False)
    assert report.added == 18 and not report.failed
    assert_same_rows(st.load(db), expected)


def test_identical_results_on_dask(tmp_path, tiny_sweep, reference_db):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    expected = st.load(reference_db)
    db = tmp_path / "dask.sqlite"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        report = run_sweep(tiny_sweep, db, executor=client.get_executor(), progress=False)
    assert report.added == 18 and not report.failed
    assert_same_rows(st.load(db), expected)
    # a second run skips every finished key
    again = run_sweep(tiny_sweep, db, workers=1, progress=False)
    assert (again.skipped, again.added) == (18, 0)


# --------------------------------------------------------------------- interruptions
SLOW = {  # about 20 runs of a few tens of milliseconds each
    "sweep": {"name": "slow", "root_seed": 3, "replications": 5, "slots": 15000,
              "warmup": 0, "memory": [16492]},
    "workload": [{"kind": "paper-4.1", "load": [0.85, 0.95]}],
    "policy": [{"kind": "flow", "budget": 13}, {"kind": "greedy"}],
}


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _children(pid: int) -> dict:
    """{pid: command line} of the live child processes of ``pid`` (Linux /proc)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def _start_sweep(config: Path, db: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stability.cli", "sweep", str(config), "--db", str(db),
         "--workers", "1", "--quiet"],
        cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)  # its own process group, so the test can clean up after it


def _wait_rows(proc: subprocess.Popen, db: Path, rows: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _count(db)
        if n >= rows:
            return n
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"fewer than {rows} rows after {timeout} s")


@pytest.fixture(scope="module")
def slow_expected(tmp_path_factory):
    """The slow sweep, uninterrupted."""
    db = tmp_path_factory.mktemp("slow") / "expected.sqlite"
    report = run_sweep(Sweep.from_dict(SLOW), db, workers=2, progress=False)
    assert report.added == 20
    return st.load(db)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_resume_after_sigkill_of_the_main_process(tmp_path, slow_expected):
    config = write_toml(tmp_path / "slow.toml", SLOW)
    db = tmp_path / "slow.sqlite"
    proc = _start_sweep(config, db)
    try:
        _wait_rows(proc, db, 3)
        workers = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        written = _count(db)
        assert 3 <= written < 20
        # the pool's processes notice their parent is gone and exit by themselves
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in workers), workers
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = st.load(db)
    assert len(before["key"]) == written
    rerun = subprocess.run([sys.executable, "-m", "stability.cli", "sweep", str(config),
                            "--db", str(db), "--workers", "2"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{written} already in" in rerun.stdout and f"{20 - written} new" in rerun.stdout
    after = st.load(db)
    assert len(set(after["key"])) == len(after["key"]) == 20
    assert_same_rows(after, slow_expected)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_killed_worker_stops_the_sweep_and_resume_completes(tmp_path, slow_expected):
    config = write_toml(tmp_path / "slow.toml", SLOW)
    db = tmp_path / "slow.sqlite"
    proc = _start_sweep(config, db)
    try:
        _wait_rows(proc, db, 3)
        workers = [p for p, cmd in _children(proc.pid).items() if b"spawn_main" in cmd]
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == 1
    assert b"a worker process died" in err and b"run the sweep again to resume" in err
    written = _count(db)
    assert 3 <= written < 20
    report = run_sweep(Sweep.from_dict(SLOW), db, workers=2, progress=False)
    assert (report.skipped, report.added) == (written, 20 - written)
    assert_same_rows(st.load(db), slow_expected)


# ------------------------------------------------------------------- foreign files
def _foreign_files(tmp_path: Path, reference_db: Path) -> dict:
    files = {}
    files["text"] = tmp_path / "notes.sqlite"
    files["text"].write_text("my precious notes\n")
    files["empty"] = tmp_path / "empty.sqlite"
    files["empty"].write_bytes(b"")
    files["random"] = tmp_path / "random.sqlite"
    files["random"].write_bytes(np.random.default_rng(1).bytes(8192))
    files["foreign"] = tmp_path / "foreign.sqlite"
    conn = sqlite3.connect(files["foreign"])
    conn.execute("CREATE TABLE runs (key TEXT PRIMARY KEY, x REAL)")
    conn.execute("INSERT INTO runs VALUES ('a', 1.0)")
    conn.commit()
    conn.close()
    files["damaged"] = tmp_path / "damaged.sqlite"
    data = bytearray(reference_db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) >= 4 * page
    data[page + 8: 3 * page] = np.random.default_rng(2).bytes(2 * page - 8)  # pages 2-3
    files["damaged"].write_bytes(bytes(data))
    files["truncated"] = tmp_path / "truncated.sqlite"
    files["truncated"].write_bytes(reference_db.read_bytes()[:60])
    return files


def test_foreign_and_corrupt_files_are_refused_and_untouched(tmp_path, tiny_sweep,
                                                             reference_db):
    files = _foreign_files(tmp_path, reference_db)
    for kind, path in files.items():
        original = path.read_bytes()
        for attempt in (lambda: st.ResultStore(path, create=True),
                        lambda: run_sweep(tiny_sweep, path, workers=1, progress=False),
                        lambda: st.load(path)):
            with pytest.raises(ValueError, match="refusing") as info:
                attempt()
            assert str(path) in str(info.value), kind
        assert path.read_bytes() == original, kind
    message = {k: str(_refusal(p)) for k, p in files.items()}
    assert "not an SQLite database" in message["text"]
    assert "another program" in message["foreign"]
    assert "corrupt" in message["damaged"] and "corrupt" in message["truncated"]


def _refusal(path):
    try:
        st.ResultStore(path)
    except ValueError as err:
        return err
    raise AssertionError(f"{path} was accepted")


def test_cli_refuses_a_foreign_file(tmp_path, capsys):
    config = write_toml(tmp_path / "tiny.toml", TINY)
    target = tmp_path / "mine.db"
    target.write_text("precious\n")
    assert cli.main(["sweep", str(config), "--db", str(target), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(target) in err and "not an SQLite database" in err
    assert target.read_text() == "precious\n"


# ------------------------------------------------------------------------- configs
BAD_CONFIGS = [
    (lambda c: c["policy"].append({"kind": "fifo"}),
     "policy[3].kind must be one of flow, classes, greedy, vllm, paced, conservative"),
    (lambda c: c["workload"][0].update(rate=-1.0), "workload[0].rate must be a finite number"),
    (lambda c: c["workload"][1].pop("load"), "workload[1].rate: give exactly one of rate"),
    (lambda c: c["sweep"].pop("replications"), "sweep.replications: missing"),
    (lambda c: c["sweep"].update(seeds=3), "sweep.seeds: unknown key"),
    (lambda c: c["policy"][0].update(budgt=3), "policy[0].budgt: a flow policy takes budget, law"),
    (lambda c: c["policy"][0].update(budget=2.5, law="deterministic"),
     "policy[0]: budget=2.5 is not allowed for law='deterministic'"),
    (lambda c: c["policy"][1].update(budget=3), "policy[1].budget: a greedy policy takes watermark"),
    (lambda c: c["policy"].append({"kind": "conservative"}), "policy[3].max_decode: missing"),
    (lambda c: c["policy"].append({"kind": "classes", "budgets": [1, 1]}),
     "policy[3]: with workload[0] (paper-4.1, 3 classes): budgets has 2 entries"),
    (lambda c: c["workload"][1].update(decode="geom-mean:zero"), "workload[1].decode: "),
    (lambda c: c["sweep"].update(memory=[30]), "sweep.memory: M=30 is smaller than"),
    (lambda c: c["sweep"].update(warmup=300), "sweep.warmup: 300 must be smaller"),
    (lambda c: c["sweep"].update(engine="fast"), "sweep: engine must be one of batch, stream, got 'fast'"),
    (lambda c: c["sweep"].update(slots=1.5), "sweep: slots must be an integer >= 1"),
    (lambda c: c["policy"].append(dict(c["policy"][1])), "policy[3]: duplicates policy[1]"),
    (lambda c: c.update(extra={"a": 1}), "extra: unknown key"),
]


@pytest.mark.parametrize("edit, message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_bad_configs_name_the_key(tmp_path, edit, message, capsys):
    import copy

    config = copy.deepcopy(TINY)
    edit(config)
    extra = config.pop("extra", None)
    path = write_toml(tmp_path / "bad.toml", config)
    if extra is not None:
        path.write_text(path.read_text() + "\n[extra]\na = 1\n")
    with pytest.raises(ValueError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)
    assert cli.main(["sweep", str(path), "--db", str(tmp_path / "x.sqlite"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "x.sqlite").exists()


def test_resume_flag(tmp_path, capsys):
    config = write_toml(tmp_path / "tiny.toml", TINY)
    db = tmp_path / "tiny.sqlite"
    assert cli.main(["sweep", "--resume", str(config), "--db", str(db), "--quiet"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    small = dict(TINY, sweep=dict(TINY["sweep"], replications=1))
    assert cli.main(["sweep", str(write_toml(tmp_path / "small.toml", small)), "--db",
                     str(db), "--workers", "1", "--quiet"]) == 0
    # the same config again continues silently; a different one needs --resume
    assert cli.main(["sweep", str(tmp_path / "small.toml"), "--db", str(db), "--quiet"]) == 0
    assert cli.main(["sweep", str(config), "--db", str(db), "--quiet"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert len(st.load(db)["key"]) == 9
    assert cli.main(["sweep", "--resume", str(config), "--db", str(db), "--workers", "1"]) == 0
    assert "18 runs, 9 already in" in capsys.readouterr().out
    assert len(st.load(db)["key"]) == 18


# ---------------------------------------------------------------- reading results
def test_export_and_load_agree(tmp_path, reference_db):
    columns = st.load(reference_db)
    out = tmp_path / "runs.csv"
    assert cli.main(["results", "export", str(reference_db), "--csv", str(out)]) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 18 and "class2_latency_p99" in rows[0] and "metrics" not in rows[0]
    for i, row in enumerate(rows):
        assert row["key"] == columns["key"][i]
        for name in ("latency_mean", "kv_std", "seed", "class0_latency_mean"):
            x = columns[name][i]
            assert (row[name] == "" and math.isnan(x)) or float(row[name]) == x, name
    # per-class columns exist only where the workload has the class
    synthetic = columns["workload_kind"] == "synthetic"
    assert np.isnan(columns["class2_latency_mean"][synthetic]).all()
    assert not np.isnan(columns["class2_latency_mean"][~synthetic]).any()
    assert columns["seed"].dtype == np.int64
    # policy parameters come from the stored specs: present where the policy takes them
    greedy = columns["policy_kind"] == "greedy"
    assert columns["policy.budget"].dtype == np.float64
    assert np.isnan(columns["policy.budget"][greedy]).all()
    assert set(columns["policy.budget"][~greedy]) == {2.0, 1.5}


def test_summarize_confidence_intervals(reference_db, capsys):
    from scipy import stats

    columns = st.load(reference_db)
    summary = st.summarize(columns, ["latency_mean", "overflow_events"], level=0.9)
    assert len(summary["runs"]) == 9 and (summary["runs"] == 2).all()
    for i in range(9):
        rows = [j for j in range(18) if all(columns[c][j] == summary[c][i]
                                            for c in st.POINT_COLUMNS)]
        x = columns["latency_mean"][rows]
        half = stats.t.ppf(0.95, 1) * x.std(ddof=1) / math.sqrt(2)
        assert summary["latency_mean_mean"][i] == x.mean()
        assert math.isclose(summary["latency_mean_half_width"][i], half, rel_tol=1e-12,
                            abs_tol=1e-300)
        assert summary["latency_mean_ci_low"][i] == x.mean() - summary[
            "latency_mean_half_width"][i]
    assert cli.main(["results", "summary", str(reference_db), "--metric", "latency_mean"]) == 0
    out = capsys.readouterr().out
    assert out.count("latency_mean") == 9 and "+-" in out


def test_summarize_small_groups():
    columns = {c: np.array(["p"] * 3, dtype=object) for c in st.POINT_COLUMNS}
    columns["key"] = np.array(["a", "b", "c"], dtype=object)
    columns["workload"] = np.array(["w1", "w1", "w2"], dtype=object)
    columns["m"] = np.array([1.0, 3.0, math.nan])
    s = st.summarize(columns, ["m"])
    assert list(s["runs"]) == [2, 1] and list(s["m_n"]) == [2, 0]
    assert s["m_mean"][0] == 2.0 and s["m_std"][0] == math.sqrt(2)
    assert math.isclose(s["m_half_width"][0], 12.706204736174707 * math.sqrt(2) / math.sqrt(2))
    assert math.isnan(s["m_mean"][1]) and math.isnan(s["m_half_width"][1])
    with pytest.raises(ValueError, match="metric 'nope'"):
        st.summarize(columns, ["nope"])
    with pytest.raises(ValueError, match="level"):
        st.summarize(columns, ["m"], level=95)


def test_failed_runs_are_reported_not_stored(tmp_path):
    # geometric decode lengths are unbounded: with tiny M some request cannot fit
    config = dict(TINY, workload=[{"kind": "synthetic", "rate": 0.5, "prompt": "det:5",
                                   "decode": "geom-mean:20"}],
                  sweep=dict(TINY["sweep"], memory=[30]), policy=[{"kind": "greedy"}])
    db = tmp_path / "f.sqlite"
    with ThreadPoolExecutor(1) as pool:
        report = run_sweep(Sweep.from_dict(config), db, executor=pool, progress=False)
    assert report.added + len(report.failed) == 2 and report.failed
    assert "exceeds the KV capacity M=30" in report.failed[0][1]
    assert len(st.load(db)["key"]) == report.added


def test_a_store_of_an_older_schema_is_refused_and_untouched(tmp_path, reference_db):
    """A store written by an older layout (another user_version) is neither read nor
    migrated: the message names both schema versions."""
    import shutil
    import sqlite3

    old = tmp_path / "old.sqlite"
    shutil.copy(reference_db, old)
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA user_version = 12345")
    conn.commit()
    conn.close()
    original = old.read_bytes()
    with pytest.raises(ValueError, match=f"schema version 12345; this version of stability "
                                         f"reads version {st.SCHEMA_VERSION}"):
        st.load(old)
    assert old.read_bytes() == original


# ------------------------------------------------------------------ timed world clocks
def test_timed_world_keeps_the_fraction_of_the_critical_rate(tmp_path):
    """A world clock makes the run timed: the load is read against lambda*_s, the metrics
    have their seconds block, and the store keeps the rate per second."""
    from stability.clock import jaillet
    from stability.theory import critical_rate_seconds

    sweep = Sweep(name="timed", workloads=({"kind": "paper-4.1", "load": 0.6},),
                  policies=({"kind": "greedy"},), memory=(2000,), replications=2, root_seed=3,
                  slots=400, warmup=50,
                  worlds=({"clock": "jaillet", "eviction": "recompute"}, {}))
    db = tmp_path / "timed.sqlite"
    run_sweep(sweep, db, workers=1, progress=False)
    cols = st.load(db)
    timed = np.array(['jaillet' in w for w in cols["world"]])
    assert timed.sum() == 2 and (~timed).sum() == 2
    base = WorkloadSpec.from_dict({"kind": "paper-4.1", "load": 0.6}).build(2000)
    crit = critical_rate_seconds(base, 2000, jaillet())
    np.testing.assert_allclose(cols["total_rate"][timed], 0.6 * crit.per_second)
    np.testing.assert_allclose(cols["total_rate"][~timed], base.total_rate)
    np.testing.assert_allclose(cols["offered_load"], 0.6)
    assert np.isfinite(cols["seconds_e2e_mean"][timed].astype(float)).all()
    assert np.isnan(cols["seconds_e2e_mean"][~timed].astype(float)).all()


@pytest.mark.parametrize("world, engine, message", [
    ({"clock": "warp"}, "batch", r"world\[0\]: clock must be unit, jaillet"),
    ({"clock": 3}, "batch", r"world\[0\]: clock must be a clock text"),
    ({"clock": "linear:-1,0,0,1"}, "batch", "c0 must be a finite number >= 0"),
    ({"clock": "jaillet"}, "stream", "a timed world clock runs on the batch engine only"),
])
def test_bad_world_clocks(world, engine, message):
    with pytest.raises(ValueError, match=message):
        Sweep(name="bad", workloads=({"kind": "paper-4.1", "load": 0.6},),
              policies=({"kind": "greedy"},), memory=(2000,), replications=1, root_seed=3,
              slots=400, engine=engine, worlds=(world,))


def test_unit_world_clock_is_not_timed():
    sweep = Sweep(name="unit", workloads=({"kind": "paper-4.1", "load": 0.6},),
                  policies=({"kind": "greedy"},), memory=(2000,), replications=1, root_seed=3,
                  slots=400, engine="stream", worlds=({"clock": "unit"},))
    assert not sweep.worlds[0].timed
