"""Mutation check: each listed bug, planted in a copy of the repository, must make a test
or a proofs_check item fail within a time limit.

Run from the repository root (not collected by pytest)::

    python tests/mutation_check.py              # every mutation, its focused tests
    python tests/mutation_check.py --wide       # every mutation, whole test files
    python tests/mutation_check.py --only fifo_eviction fft_too_short

The working tree (tracked files plus new, not ignored ones) is copied to a temporary
directory; the unmutated copy must pass the selected tests and items first (otherwise a
"kill" would mean nothing).  Then, one at a time, each mutation is applied there as exact
text replacements (each old text must occur exactly once: a mutation that no longer
applies is an error to fix, not a pass), its tests and proofs_check items run in a fresh
process with that copy first on the import path, and the copy is restored.

Status per mutation:

* ``killed``: a selected test or item failed (listed);
* ``killed (timeout)``: pytest-timeout or proofs_check's per-item limit stopped a hang and
  reported it as a failure within the limit;
* ``survived``: everything passed;
* ``hung``: the run exceeded the overall limit without failing, counted as survived.

Exit status 1 if any mutation survived or hung (or the baseline failed), else 0.

Each mutation is a small data entry (file, old text, new text): when the engines are
rewritten, re-target the engine entries by updating those strings.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    edits: tuple  # ((path relative to the root, old text, new text), ...)
    tests: tuple = ()  # pytest node ids or files (focused selection)
    checks: tuple = ()  # proofs_check item names
    wide: tuple = field(default=())  # whole test files for --wide


ABS = "tests/test_absolute.py"
THEORY = "tests/test_theory.py"

MUTATIONS = (
    Mutation(
        "latency_off_by_one",
        "latency = completion - a + 2 in both engines (batch metrics and stream kernel)",
        (("stability/result.py", "latency = raw.completion[done] - arrival[done] + 1",
          "latency = raw.completion[done] - arrival[done] + 2"),
         ("stability/result.py",
          "latency=Distribution.from_values(raw.completion[dk] - arrival[dk] + 1)",
          "latency=Distribution.from_values(raw.completion[dk] - arrival[dk] + 2)"),
         ("stability/engine/steps.py", "latency = t - r.arrival + 1",
          "latency = t - r.arrival + 2")),
        tests=(f"{ABS}::test_undisturbed_requests_have_latency_o_ttft_1_and_no_delay",
               f"{ABS}::test_undisturbed_stream_has_latency_o_ttft_1_and_no_delay",
               f"{ABS}::test_lifo_evicts_the_most_recent_activation",
               f"{ABS}::test_simulated_latency_at_the_tuned_budget_is_the_tuners_prediction"),
        wide=(ABS, "tests/test_engines.py", "tests/test_invariants.py"),
    ),
    Mutation(
        "lindley_delay_plus_one",
        "Lindley mean_delay = E[Q] / lambda + 1 (FFT and series)",
        (("stability/theory/conditions.py",
          "return LindleyMean(lam, b.describe(), mean, mean / lam, size, abs(mean - previous))",
          "return LindleyMean(lam, b.describe(), mean, mean / lam + 1, size, abs(mean - previous))"),
         ("stability/theory/conditions.py",
          "return LindleyMean(lam, b.describe(), total, total / lam, n_done, bound)",
          "return LindleyMean(lam, b.describe(), total, total / lam + 1, n_done, bound)")),
        tests=(f"{ABS}::test_simulated_queueing_delay_is_the_lindley_mean_delay",
               f"{THEORY}::test_lindley_mean_delay_is_the_mean_queue_over_lambda_pollaczek_khinchine"),
        checks=("lindley_mean_crosscheck",),
        wide=(ABS, THEORY, "tests/test_theory_vs_simulation.py"),
    ),
    Mutation(
        "tuner_latency_minus_one",
        "tune_budget's mean_latency = delay + E[o] - 1",
        (("stability/theory/tuning.py", "delay + _mean_decode(workload), loss",
          "delay + _mean_decode(workload) - 1, loss"),),
        tests=(f"{ABS}::test_simulated_latency_at_the_tuned_budget_is_the_tuners_prediction",
               f"{THEORY}::test_tuner_latency_is_lindley_delay_plus_the_decode_length"),
        wide=(ABS, THEORY),
    ),
    Mutation(
        "expected_events_without_t",
        "OverflowBound.expected_events = exp(-I(M)) instead of T exp(-I(M))",
        (("stability/theory/overflow.py",
          "model.theta_max, per_slot, slots, slots * per_slot, note)",
          "model.theta_max, per_slot, slots, per_slot, note)"),),
        tests=(f"{ABS}::test_any_overflow_in_t_slots_is_below_t_times_the_per_slot_bound",
               f"{THEORY}::test_overflow_bound_over_t_slots_is_t_times_the_per_slot_bound"),
        wide=(ABS, THEORY),
    ),
    Mutation(
        "prop_3_2_holds_strict",
        "Prop. 3.2 'holds' tested with load < M instead of load <= M",
        (("stability/theory/conditions.py",
          "load / memory, load <= memory, load < memory)",
          "load / memory, load < memory, load < memory)"),),
        tests=(f"{THEORY}::test_prop_3_2_at_its_boundary_holds_but_not_strictly",),
        checks=("section_4_1_constants",),
        wide=(ABS, THEORY),
    ),
    Mutation(
        "alg1_peak_from_mean",
        "Alg. 1 peak from mean lengths instead of the largest",
        (("stability/theory/conditions.py",
          "lmax, omax = c.prompt.max_value, c.decode.max_value",
          "lmax, omax = c.prompt.mean(), c.decode.mean()"),),
        tests=(f"{ABS}::test_inequality_2_capacity_never_overflows_with_random_lengths",
               f"{THEORY}::test_alg1_peak_uses_the_largest_lengths_of_each_class"),
        checks=("alg1_saturated_peak",),
        wide=(ABS, THEORY),
    ),
    Mutation(
        "critical_rate_unweighted",
        "critical_rate averages E[w_k] over classes without the weights lambda_k / lambda",
        (("stability/theory/conditions.py",
          "    mix = class_mix(workload)\n    mean_w = float(np.dot(mix,",
          "    mix = np.full(workload.num_classes, 1.0 / workload.num_classes)\n"
          "    mean_w = float(np.dot(mix,"),),
        tests=(f"{THEORY}::test_critical_rate_weights_classes_by_their_rates",),
        checks=("section_4_1_constants",),
        wide=(ABS, THEORY),
    ),
    Mutation(
        "window_closed",
        "budget window non-empty when lambda <= M / E[w] (closed instead of open)",
        (("stability/theory/tuning.py", "return BudgetWindow(lam, high, lam < high, corrected)",
          "return BudgetWindow(lam, high, lam <= high, corrected)"),),
        tests=(f"{THEORY}::test_budget_window_at_its_boundary_is_empty",),
        checks=("budget_window",),
        wide=(ABS, THEORY),
    ),
    Mutation(
        "fifo_eviction",
        "FIFO eviction (oldest activation first) in both engines",
        (("stability/engine/reference.py", "i = sim.active.pop()", "i = sim.active.pop(0)"),
         ("stability/engine/kernel.py",
          "                c.stack_n -= 1\n"
          "                idx = stack[c.stack_n].idx\n"
          "                if req[idx].state != ACTIVE or req[idx].admitted != stack[c.stack_n].stamp:\n",
          "                c.stack_n -= 1\n"
          "                idx = stack[0].idx\n"
          "                stamp = stack[0].stamp\n"
          "                for jj in range(c.stack_n):\n"
          "                    stack[jj].idx = stack[jj + 1].idx\n"
          "                    stack[jj].stamp = stack[jj + 1].stamp\n"
          "                if req[idx].state != ACTIVE or req[idx].admitted != stamp:\n")),
        tests=(f"{ABS}::test_lifo_evicts_the_most_recent_activation",),
        wide=(ABS, "tests/test_engines.py", "tests/test_invariants.py"),
    ),
    Mutation(
        "fft_too_short",
        "exact_tail's FFT length N / 8 (too short for the window it must cover)",
        (("stability/theory/exact_tail.py",
          "return s, sfft.next_fast_len(max(n, 16), real=True)",
          "return s, sfft.next_fast_len(max(n // 8, 16), real=True)"),),
        tests=(f"{THEORY}::test_fft_tail_matches_brute_force_enumeration",
               f"{THEORY}::test_fft_tail_at_the_paper_capacity_is_fast"),
        checks=("fft_tail_vs_enumeration", "chernoff_dominates_exact"),
        wide=(ABS, THEORY, "tests/test_rare.py"),
    ),
)


def copy_tree(dest: Path) -> None:
    """Tracked files plus new files that are not ignored, as they are in the work tree."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, check=True, capture_output=True).stdout
    for rel in filter(None, out.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _env(copy: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy) + os.pathsep + env.get("PYTHONPATH", "")
    env["HYPOTHESIS_PROFILE"] = "ci"
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def run_selection(copy: Path, tests, checks, test_timeout: float, limit: float):
    """Run tests and proofs_check items in ``copy``; (status, failed names, seconds, log)."""
    t0 = time.perf_counter()
    failed, log, timed_out = [], [], False
    commands = []
    if tests:
        commands.append(("pytest", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                    "-o", "addopts=", "-rfE", f"--timeout={test_timeout:g}",
                                    "--timeout-method=thread", *tests]))
    if checks:
        commands.append(("proofs_check", [sys.executable, "-m", "proofs_check",
                                          f"--timeout={test_timeout:g}", *checks]))
    for kind, cmd in commands:
        left = limit - (time.perf_counter() - t0)
        try:
            proc = subprocess.run(cmd, cwd=copy, env=_env(copy), capture_output=True, text=True,
                                  timeout=max(left, 1.0))
        except subprocess.TimeoutExpired:
            return "hung", failed, time.perf_counter() - t0, "\n".join(log)
        text = proc.stdout + proc.stderr
        log.append(text)
        if kind == "pytest":
            failed += [m.group(1) for m in re.finditer(r"^(?:FAILED|ERROR) (\S+)", text, re.M)]
            if "+ Timeout +" in text:  # pytest-timeout (thread method) dumped stacks and exited
                timed_out = True
                frames = re.findall(r'File "[^"]*/(tests/[^"/]+\.py)", line \d+, in (\w+)', text)
                where = "::".join(frames[-1]) if frames else "?"
                failed.append(f"pytest-timeout in {where}")
            elif proc.returncode != 0 and not failed:
                failed.append(f"pytest exited with {proc.returncode}")
        else:
            for m in re.finditer(r"^FAIL\s+(\S+)", text, re.M):
                failed.append(f"proofs_check {m.group(1)}")
            if "timed out" in text or "time limit" in text:
                timed_out = True
            if proc.returncode != 0 and not any(f.startswith("proofs_check") for f in failed):
                failed.append(f"proofs_check exited with {proc.returncode}")
    seconds = time.perf_counter() - t0
    if not failed:
        return "survived", failed, seconds, "\n".join(log)
    return ("killed (timeout)" if timed_out else "killed"), failed, seconds, "\n".join(log)


def apply(copy: Path, mutation: Mutation) -> dict:
    """Apply the edits; return the original text of each file changed."""
    originals = {}
    for rel, old, new in mutation.edits:
        path = copy / rel
        text = path.read_text()
        originals.setdefault(rel, text)
        count = text.count(old)
        if count != 1:
            raise SystemExit(f"mutation {mutation.name}: {rel} contains the old text {count} times "
                             f"(must be exactly once); re-target it:\n{old}")
        path.write_text(text.replace(old, new))
    return originals


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help=f"mutations to run (default all: {', '.join(m.name for m in MUTATIONS)})")
    parser.add_argument("--wide", action="store_true",
                        help="run whole test files (slower) instead of the focused tests")
    parser.add_argument("--test-timeout", type=float, default=120.0,
                        help="time limit per test and per proofs_check item, seconds")
    parser.add_argument("--limit", type=float, default=600.0,
                        help="overall time limit per mutation, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.only is None or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")

    def selection(m):
        return (m.wide or m.tests) if args.wide else m.tests

    tmp = Path(tempfile.mkdtemp(prefix="mutation_check_"))
    copy = tmp / "repo"
    copy.mkdir()
    try:
        copy_tree(copy)
        probe = subprocess.run([sys.executable, "-c", "import stability; print(stability.__file__)"],
                               cwd=copy, env=_env(copy), capture_output=True, text=True)
        if not probe.stdout.strip().startswith(str(copy)):
            print(f"the copy is not the package imported: {probe.stdout or probe.stderr}",
                  file=sys.stderr)
            return 2
        tests = sorted({t for m in chosen for t in selection(m)})
        checks = sorted({c for m in chosen for c in m.checks})
        print(f"baseline: {len(tests)} test selections, {len(checks)} proofs_check items "
              "on the unmutated copy ...", flush=True)
        status, failed, secs, log = run_selection(copy, tests, checks, args.test_timeout,
                                                  args.limit)
        if status != "survived":
            print(f"baseline FAILED ({status}, {secs:.0f} s): {failed}\n{log[-3000:]}",
                  file=sys.stderr)
            return 1
        print(f"baseline passes ({secs:.0f} s)\n", flush=True)
        rows = []
        for m in chosen:
            originals = apply(copy, m)
            try:
                status, failed, secs, log = run_selection(copy, selection(m), m.checks,
                                                          args.test_timeout, args.limit)
            finally:
                for rel, text in originals.items():
                    (copy / rel).write_text(text)
            rows.append((m, status, failed, secs))
            print(f"{m.name:<28} {status:<17} {secs:6.1f} s  {'; '.join(failed)[:300]}", flush=True)
        print("\n| mutation | what | status | killed by | seconds |\n|---|---|---|---|---|")
        for m, status, failed, secs in rows:
            print(f"| `{m.name}` | {m.description} | {status} | "
                  f"{'<br>'.join(failed) or '-'} | {secs:.1f} |")
        bad = [m.name for m, status, _, _ in rows if not status.startswith("killed")]
        if bad:
            print(f"\nnot killed: {', '.join(bad)}", file=sys.stderr)
            return 1
        print(f"\nall {len(rows)} mutations killed")
        return 0
    finally:
        if args.keep:
            print(f"copy kept in {copy}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
