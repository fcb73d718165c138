"""End to end: ``stability reproduce`` writes every figure and a verification report.

The smoke budget (a hidden ``--smoke`` flag, smaller than ``--quick``) runs every
experiment through the same code path as the real reproduction: sweeps on a process
pool into the results store, theory, figures, VERIFICATION.md.
"""

import json
import re
import subprocess
import sys

import pytest

from experiments import EXPERIMENTS
from paper_figures import FIGURES
from stability.cli import main

VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")


ROW = re.compile(r"^\| ([a-z0-9]+)\.(\d+) \|")


def _rows(text: str) -> list:
    """The table rows of VERIFICATION.md, each named ``experiment.N``."""
    return [line for line in text.splitlines() if ROW.match(line)]


@pytest.mark.slow
def test_reproduce_smoke_writes_every_figure_and_report(tmp_path, capsys):
    assert main(["reproduce", "--smoke", "--output", str(tmp_path), "--workers", "2",
                 "--quiet"]) == 0
    for name in FIGURES:
        png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert pdf.read_bytes()[:5] == b"%PDF-", name
        assert png.stat().st_size > 20_000 and pdf.stat().st_size > 5_000, name
    # every figure records the mode of the results it was drawn from (paper_figures.docs)
    modes = json.loads((tmp_path / "figures.json").read_text())
    assert {name: modes.get(name) for name in FIGURES} == {name: "smoke" for name in FIGURES}
    report = (tmp_path / "VERIFICATION.md").read_text()
    rows = _rows(report)
    assert len(rows) >= 30
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 7, row
        assert ROW.match(row).group(1) in EXPERIMENTS, row
        assert cells[-1].strip("*") in VERDICTS, row
        assert cells[5], row  # every verdict states its criterion
    for name in EXPERIMENTS:  # every experiment has its JSON (parameters, seeds, versions)
        assert (tmp_path / "cache" / "smoke" / f"{name}.json").is_file()
    assert "Not run" not in report
    assert (tmp_path / "TRACES.md").is_file()
    out = capsys.readouterr().out
    assert "VERIFICATION.md" in out and "rows" in out

    # A second run finds every simulation in the cache and only plots.
    assert main(["reproduce", "--smoke", "--output", str(tmp_path), "--workers", "1",
                 "--only", "section41,boundary"]) == 0
    err = capsys.readouterr().err
    new_runs = [int(n) for n in re.findall(r"\((\d+) new,", err)]
    assert new_runs and not any(new_runs), err
    assert _rows((tmp_path / "VERIFICATION.md").read_text()) == rows


def test_reproduce_rejects_unknown_experiment(tmp_path, capsys):
    assert main(["reproduce", "--smoke", "--output", str(tmp_path), "--only", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment nope" in err and "section41" in err


def test_reproduce_path_needs_no_test_or_dask_packages():
    """`pip install -e .` without extras must be enough for `stability reproduce --quick`."""
    modules = ["stability.cli", "experiments.command", "experiments.run", "experiments.common"]
    modules += [f"experiments.{n}" for n in EXPERIMENTS]
    modules += ["paper_figures.style"] + [f"paper_figures.{n}" for n in FIGURES]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "bad = sorted({'pytest', 'hypothesis', 'distributed', 'dask'} & set(sys.modules))\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
