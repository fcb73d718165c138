"""proofs_check's machinery: labels, time limits, command line, deterministic numbers.

The checks themselves run in ``python -m proofs_check`` (and, for the mutation check, in
tests/mutation_check.py); here two fast ones stand in for them.
"""

import time

import pytest

import proofs_check as pc
from proofs_check import CHECKS, EVIDENCE, KINDS, Outcome, below, run_all, sig
from proofs_check.__main__ import main, write_report

FAST = ["memory_time_identity", "budget_window"]


def test_every_check_states_its_kind_and_evidence():
    run_all(["memory_time_identity"])  # imports and registers every check
    assert len(CHECKS) >= 25
    assert len({c.name for c in CHECKS}) == len(CHECKS)
    for c in CHECKS:
        assert c.kind in KINDS and c.evidence in EVIDENCE and c.timeout > 0
    labels = {c.evidence for c in CHECKS}
    assert labels == {"symbolic", "numeric"}


def test_report_has_an_evidence_column_and_the_pass_count(tmp_path):
    results = run_all(FAST)
    assert [c.name for c, _, _ in results] == FAST
    assert all(out.passed for _, out, _ in results)
    path = tmp_path / "REPORT.md"
    write_report(results, path)
    text = path.read_text()
    assert "| # | claim | kind | evidence |" in text
    assert "| symbolic proof |" in text and "| numeric cross-check |" in text
    assert "2 of 2 checks PASS (1 of 1 symbolic proofs, 1 of 1 numeric cross-checks)" in text


def test_a_check_over_its_time_limit_fails_instead_of_hanging():
    @pc.check("test_sleeps", "beyond", "sleeps far beyond its limit", evidence="numeric",
              timeout=1.0)
    def sleeps():
        time.sleep(60)
        return Outcome(True, "never", "never")

    try:
        t0 = time.perf_counter()
        (c, out, secs), = run_all(["test_sleeps"])
        assert time.perf_counter() - t0 < 30
        assert not out.passed and out.method == "timed out" and "1 s" in out.details
    finally:
        CHECKS[:] = [c for c in CHECKS if c.name != "test_sleeps"]


def test_a_crashing_check_fails_with_its_traceback():
    @pc.check("test_crashes", "beyond", "raises", evidence="numeric")
    def crashes():
        raise ZeroDivisionError("on purpose")

    try:
        (c, out, secs), = run_all(["test_crashes"])
        assert not out.passed and out.method == "crashed" and "on purpose" in out.details
    finally:
        CHECKS[:] = [c for c in CHECKS if c.name != "test_crashes"]


def test_command_line_help_list_unknown_names_and_pass_count(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["--help"])
    assert ex.value.code == 0 and "NAME" in capsys.readouterr().out
    with pytest.raises(SystemExit) as ex:
        main(["no_such_check"])
    assert ex.value.code == 2 and "no check named no_such_check" in capsys.readouterr().err
    assert main(["--list"]) == 0
    assert "budget_window" in capsys.readouterr().out
    assert main(FAST) == 0  # names given: the report is not rewritten
    out = capsys.readouterr().out
    assert "2 of 2 checks PASS" in out and "wrote" not in out


def test_reported_numbers_do_not_depend_on_the_last_bits():
    assert sig(0.8008830001) == sig(0.8008829999) == "0.8009"
    assert below(3.3e-16) == below(5.6e-16) == "< 1e-15"
    assert below(2.0e-11) == below(2.2e-11) == "< 1e-10"
    assert below(0.0) == "0"


def test_adaptive_checks_fail_on_wrong_theory(monkeypatch):
    """The checks of docs/adaptive.md section 3 pass, and fail when the package's answer
    is wrong: removals that free one token each, a guarantee at b - 1, a window whose drain
    end is 10% low."""
    import dataclasses

    import proofs_check.adaptive as pa
    from stability.theory import adaptive as ta

    names = ["adaptive_refusal_count", "adaptive_budgeted_bound", "memory_time_window_algebra"]
    assert all(out.passed for _, out, _ in run_all(names, isolate=False))

    monkeypatch.setattr(pa, "refusals_and_removals",
                        lambda running, needs, memory, h: ta.refusals_and_removals(
                            running, needs, memory, 1))
    monkeypatch.setattr(pa, "budgeted_guarantee",
                        lambda w, m, b: ta.budgeted_guarantee(w, m, max(b - 1, 0.5)))
    monkeypatch.setattr(pa, "memory_time_window", lambda *a, **k: dataclasses.replace(
        ta.memory_time_window(*a, **k), low=ta.memory_time_window(*a, **k).low / 1.1))
    assert not any(out.passed for _, out, _ in run_all(names, isolate=False))
