"""Clock profiles: fitting a Linear clock to measured iterations, and bad input
(stability.clock.fit_profile, parse_clock, the CLI's --clock)."""

import math

import numpy as np
import pytest

from stability.cli import main
from stability.clock import Linear, fit_profile, parse_clock

HEADER = "batch_size,context_tokens,prefill_tokens,seconds"


def _write(path, rows, header=HEADER):
    path.write_text(header + "\n" + "\n".join(",".join(str(x) for x in r) for r in rows) + "\n")
    return path


def test_fit_recovers_exact_coefficients(tmp_path):
    truth = Linear(c0=0.04, c_seq=5e-4, c_ctx=3e-6, c_prefill=4e-4)
    rng = np.random.default_rng(0)
    n = rng.integers(1, 200, 40)
    ctx = n * rng.integers(100, 2000, 40)
    p = rng.integers(0, 4000, 40)
    t = truth.seconds(n, ctx, p)
    fit = fit_profile(_write(tmp_path / "p.csv", zip(n, ctx, p, t)))
    for name in ("c0", "c_seq", "c_ctx", "c_prefill"):
        assert getattr(fit.clock, name) == pytest.approx(getattr(truth, name), rel=1e-6)
    assert fit.rows == 40 and fit.rms_residual < 1e-12


def test_fit_reports_residuals_of_noisy_data(tmp_path):
    rng = np.random.default_rng(1)
    n = rng.integers(1, 100, 200)
    ctx, p = n * 500, rng.integers(0, 1000, 200)
    t = 0.02 + 1e-3 * n + 1e-6 * ctx + 2e-4 * p
    noisy = t * rng.lognormal(0.0, 0.05, 200)
    fit = fit_profile(_write(tmp_path / "p.csv", zip(n, ctx, p, noisy)))
    assert 0.01 < fit.max_relative_residual < 0.5
    assert fit.rms_residual == pytest.approx(np.sqrt(np.mean((noisy - fit.clock.seconds(
        n, ctx, p)) ** 2)))
    # non-negative least squares: every coefficient >= 0, so every prediction is >= 0
    assert min(fit.clock.c0, fit.clock.c_seq, fit.clock.c_ctx, fit.clock.c_prefill) >= 0


@pytest.mark.parametrize("content, message", [
    (("batch_size,context_tokens,seconds", [(1, 2, 3)] * 5), "missing column 'prefill_tokens'"),
    ((HEADER, [(1, 2, 3, 4)] * 3), "3 rows, but fitting 4 coefficients needs at least 4"),
    ((HEADER, [(1, 2, 3, 4)] * 4 + [(1, -2, 3, 4)]), ":6: context_tokens = -2.0 must be"),
    ((HEADER, [(1, 2, 3, 4)] * 4 + [(1, 2, "x", 4)]), ":6: prefill_tokens = 'x' is not a "),
    ((HEADER, [(1, 2, 3, 4)] * 4 + [(1, 2, 3, "inf")]), "seconds = inf must be a finite"),
    ((HEADER, [(1, 2, 3, 0)] * 5), "a Linear clock needs a coefficient > 0"),
])
def test_bad_profiles(tmp_path, content, message):
    header, rows = content
    path = _write(tmp_path / "bad.csv", rows, header)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("'", "'")):
        fit_profile(path)


def test_missing_profile_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        fit_profile(tmp_path / "absent.csv")


@pytest.mark.parametrize("text, message", [
    ("linear:1,2,3", "linear takes 4 coefficients"),
    ("linear:1,2,x,4", "c_ctx = 'x' is not a number"),
    ("linear:-1,0,0,0", "c0 must be a finite number >= 0"),
    ("linear:nan,0,0,1", "c0 must be a finite number >= 0"),
    ("warp", "clock must be unit, jaillet"),
])
def test_parse_clock_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_clock(text)


def test_parse_clock_values(tmp_path):
    assert parse_clock("linear:0.5,0.25,0,0") == Linear(0.5, 0.25, 0.0, 0.0)
    path = _write(tmp_path / "p.csv", [(n, (n * 7) % 5, n % 3, 0.5 + 0.25 * n) for n in range(1, 12)])
    clock = parse_clock(f"profile:{path}")
    assert math.isclose(clock.c0, 0.5, rel_tol=1e-9) and math.isclose(clock.c_seq, 0.25,
                                                                       rel_tol=1e-9)


def test_cli_bad_profile_is_one_line(tmp_path, capsys):
    path = _write(tmp_path / "bad.csv", [(1, 2, 3, 4)] * 2)
    out = tmp_path / "out.json"
    code = main(["simulate", "--workload", "paper-4.1", "--policy", "greedy", "--memory",
                 "16492", "--clock", f"profile:{path}", "--seconds", "10", "--json-out",
                 str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "2 rows, but fitting 4 coefficients" in err and "Traceback" not in err
    assert not out.exists()  # nothing is written
