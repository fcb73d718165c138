"""Budgets found by simulation (stability.sweep.tune, ``stability tune``): the grid, the
ranking both ways (a thrashing lattice wants a finite budget, random lengths want Greedy),
the store that makes a second call free, and the command line's one-line errors."""

import json
import math
from concurrent.futures import ThreadPoolExecutor

import pytest

from stability import cli
from stability.store import ResultStore
from stability.sweep import WorkloadSpec
from stability.sweep import tune as grid

LATTICE = WorkloadSpec.from_dict({"kind": "paper-4.1", "load": 0.95})
GEOMETRIC = WorkloadSpec.from_dict({"kind": "synthetic", "load": 0.9, "prompt": "det:10",
                                    "decode": "geom-mean:40"})


def _tune(tmp_path, workload, family, multipliers, memory=16492, slots=6000, reps=2):
    with ThreadPoolExecutor(2) as pool:
        return grid.tune_grid(workload, memory, tmp_path / "t.sqlite", family, slots=slots,
                              replications=reps, multipliers=multipliers, executor=pool,
                              progress=False)


def test_grids_are_multiples_of_the_arrival_rate():
    flow = grid.budget_grid(2.0)
    assert [g["budget"] for g in flow] == [round(2.0 * m, 6) for m in grid.MULTIPLIERS]
    assert all(g == {"kind": "flow", "budget": g["budget"], "law": "two-point"} for g in flow)
    checked = grid.budget_grid(2.0, grid.checked_spec, grid.CHECKED_MULTIPLIERS)
    assert checked[-1] == {"kind": "greedy"}  # b = infinity is Greedy
    assert checked[:-1] == [{"kind": "flow-checked", "budget": round(2.0 * m, 6)}
                            for m in grid.MULTIPLIERS]


def test_the_thrashing_lattice_wants_a_finite_budget(tmp_path):
    """Sec. 4.1 at 0.95 lambda*, restart: Greedy (b = inf) thrashes, so the best is finite,
    and its mean number in system is below Greedy's with non-overlapping intervals."""
    r = _tune(tmp_path, LATTICE, "flow-checked", (1.05, 1.4, math.inf), reps=4)
    assert [p.multiplier for p in r.points] == [1.05, 1.4, math.inf]
    assert r.best.spec["kind"] == "flow-checked"
    assert r.best is min(r.points, key=lambda p: p.in_system[0])
    greedy = r.points[-1]
    assert r.best.in_system[2] < greedy.in_system[1] and greedy.waste_share > 0.1


def test_random_lengths_want_greedy_and_a_second_call_runs_nothing(tmp_path):
    """Geometric lengths at 0.9: Greedy (b = inf) holds the fewest requests; the store
    keeps the runs, so tuning again gives the same numbers with no new row."""
    r = _tune(tmp_path, GEOMETRIC, "flow-checked", (1.05, math.inf), memory=2000)
    assert r.best.spec == {"kind": "greedy"}
    with ResultStore(tmp_path / "t.sqlite") as store:
        rows = len(store)
    again = _tune(tmp_path, GEOMETRIC, "flow-checked", (1.05, math.inf), memory=2000)
    with ResultStore(tmp_path / "t.sqlite") as store:
        assert len(store) == rows == 4
    assert again.to_dict() == r.to_dict()


def test_flow_family_and_bad_input():
    with pytest.raises(ValueError, match="family must be one of flow, flow-checked"):
        grid.grid_sweep(LATTICE, 16492, "greedy")
    with pytest.raises(ValueError, match="multipliers"):
        grid.grid_sweep(LATTICE, 16492, "flow", multipliers=(1.1, -1.0))
    sweep, ms, specs, rate = grid.grid_sweep(LATTICE, 16492, "flow", multipliers=(1.1,))
    assert specs == [grid.flow_spec(1.1 * rate)] and sweep.warmup == 20_000 // 4


def test_help(capsys):
    for argv in (["--help"], ["tune", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 0
    assert "--multipliers" in capsys.readouterr().out


def test_command_line(tmp_path, capsys):
    db = tmp_path / "c.sqlite"
    args = ["tune", "--workload", "paper-4.1", "--load", "0.95", "--memory", "16492",
            "--slots", "3000", "--replications", "2", "--multipliers", "1.05,3",
            "--db", str(db), "--workers", "1", "--quiet"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "flow budgets" in out and "<- best" in out and "in system [95% CI]" in out
    assert cli.main(args + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["family"] == "flow" and len(data["points"]) == 2
    for bad, message in [(["--multipliers", "1.1,x"], "'x' is not a number"),
                         (["--multipliers", "inf"], "inf (Greedy) belongs to --policy "
                                                    "flow-checked"),
                         (["--slots", "0"], "slots"), (["--replications", "1"],
                                                       "replications")]:
        assert cli.main(args + bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("stability: error:") and message in err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_ctrl_c_keeps_the_finished_runs(tmp_path):
    """Ctrl-C once runs are stored: exit 130, one line saying where they are, rows kept."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time
    from pathlib import Path

    db = tmp_path / "i.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stability", "tune", "--workload", "paper-4.1", "--load", "0.95",
         "--memory", "16492", "--slots", "400000", "--replications", "2", "--workers", "1",
         "--db", str(db), "--quiet"], cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    rows = 0
    while rows == 0 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if db.exists():
            try:
                with ResultStore(db) as store:
                    rows = len(store)
            except (ValueError, OSError, sqlite3.Error):  # the store is being created
                rows = 0
    assert rows > 0 and proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.decode().strip().splitlines()[-1] == (
        f"stability: interrupted; finished runs are saved in {db}; run again to resume")
    with ResultStore(db) as store:
        assert len(store) >= rows
