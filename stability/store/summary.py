"""Summaries of a results store: mean, std and a Student-t interval per point
(:func:`stability.intervals.student_t`), as text, JSON records or CSV."""

from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np

from stability.intervals import student_t
from stability.jsonvalues import plain
from stability.store.storage import METRIC_COLUMNS, PARAM_COLUMNS, POINT_COLUMNS

__all__ = ["summarize", "format_summary", "point_label", "summary_records", "write_summary_csv",
           "DEFAULT_SUMMARY_METRICS", "SUMMARY_STATS"]

SUMMARY_STATS = ("mean", "std", "n", "ci_low", "ci_high", "half_width")
"""What :func:`summarize` gives per metric."""

DEFAULT_SUMMARY_METRICS = ("latency_mean", "latency_p99", "request_throughput", "kv_mean",
                           "overflow_events", "evictions", "queue_mean", "unfinished")


def summarize(columns: dict, metrics=None, level: float = 0.95) -> dict:
    """Mean, std, n and a Student-t confidence interval per point, computed once here.

    Parameters
    ----------
    columns : dict
        Runs as returned by :func:`load`.
    metrics : list of str or None
        Metric columns to summarise (default: a few main ones).
    level : float
        Confidence level of the two-sided interval, e.g. 0.95.

    Returns
    -------
    dict of numpy columns, one entry per point (runs equal in everything but the
    replication and its seed, see ``POINT_COLUMNS``): the parameter columns, ``runs``,
    and for each metric ``m``: ``m_mean``, ``m_std`` (ddof=1), ``m_n`` (runs where m is
    defined), ``m_ci_low``, ``m_ci_high``, ``m_half_width``
    (t_{(1+level)/2, n-1} std / sqrt(n); nan when n < 2).
    """
    if not (isinstance(level, float) and 0.0 < level < 1.0):
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    metrics = list(DEFAULT_SUMMARY_METRICS if metrics is None else metrics)
    for m in metrics:
        if m not in columns:
            raise ValueError(f"metric {m!r} is not a column of the results; choose from "
                             f"{', '.join(c for c in METRIC_COLUMNS)} or a per-class column")
    n_rows = len(columns["key"]) if "key" in columns else 0
    groups: dict = {}
    for i in range(n_rows):
        groups.setdefault(tuple(columns[c][i] for c in POINT_COLUMNS), []).append(i)
    firsts = [rows[0] for rows in groups.values()]
    carried = [c for c in ("workload", "policy", *PARAM_COLUMNS) if c in columns
               and c not in ("params", "replication", "seed", "root_seed")]
    out = {c: columns[c][firsts] if firsts else columns[c][:0]
           for c in dict.fromkeys(carried)}
    out["runs"] = np.array([len(rows) for rows in groups.values()], dtype=np.int64)
    for m in metrics:
        stats = np.full((len(groups), 6), np.nan)
        for g, rows in enumerate(groups.values()):
            t = student_t(np.asarray(columns[m][rows], dtype=float), level)
            stats[g] = (t.mean, t.std, t.n, t.low, t.high, t.half_width)
        for j, suffix in enumerate(SUMMARY_STATS):
            out[f"{m}_{suffix}"] = stats[:, j].astype(np.int64) if suffix == "n" else stats[:, j]
    return out



def point_label(summary: dict, i: int) -> str:
    """A short description of point ``i``: workload | policy | M, slots, engine."""
    w = json.loads(summary["workload"][i])
    p = json.loads(summary["policy"][i])
    wl = " ".join([w.pop("kind")] + [f"{k}={v}" for k, v in w.items() if k != "trace_sha256"])
    pl = " ".join([p.pop("kind")] + [f"{k}={v}" for k, v in p.items()])
    return (f"{wl} | {pl} | M={int(summary['memory'][i])} slots={int(summary['slots'][i])} "
            f"{summary['engine'][i]}")


def format_summary(summary: dict, metrics, level: float) -> str:
    lines = []
    for i in range(len(summary["runs"])):
        lines.append(f"{point_label(summary, i)}  (n={int(summary['runs'][i])})")
        for m in metrics:
            mean, half = summary[f"{m}_mean"][i], summary[f"{m}_half_width"][i]
            ci = f" +- {half:.4g}" if not math.isnan(half) else ""
            lines.append(f"    {m:<24} {mean:.6g}{ci}")
    lines.append(f"(+- : half-width of the two-sided {level:g} Student-t interval across "
                 "replications)")
    return "\n".join(lines)


def summary_records(summary: dict, metrics, level: float) -> list:
    """One JSON-ready record per point: its workload and policy specs (parsed), world,
    M, slots, warm-up, engine, version, runs, and per metric its ``mean``, ``std``, ``n``,
    ``ci_low``, ``ci_high``, ``half_width`` at ``level`` (null where undefined, see
    :mod:`stability.jsonvalues`)."""
    out = []
    for i in range(len(summary["runs"])):
        record = {"workload": json.loads(summary["workload"][i]),
                  "policy": json.loads(summary["policy"][i])}
        if "world" in summary:
            record["world"] = json.loads(summary["world"][i])
        for c in ("memory", "slots", "warmup", "engine", "version"):
            if c in summary:
                record[c] = summary[c][i]
        record["runs"] = summary["runs"][i]
        record["level"] = level
        record["metrics"] = {m: {s: summary[f"{m}_{s}"][i] for s in SUMMARY_STATS}
                             for m in metrics}
        out.append(plain(record))
    return out


def write_summary_csv(summary: dict, metrics, out) -> int:
    """The summary as CSV (one row per point: its parameters, ``runs``, then
    ``<metric>_<stat>`` columns) to the file ``out`` ("-": stdout); empty cells are
    undefined values.  Returns the number of rows."""
    params = [c for c in ("workload", "policy", "world", "memory", "slots", "warmup", "engine",
                          "version") if c in summary]
    names = params + ["runs"] + [f"{m}_{s}" for m in metrics for s in SUMMARY_STATS]
    try:
        handle = sys.stdout if str(out) == "-" else open(out, "w", newline="")
    except OSError as err:
        raise ValueError(f"{out}: cannot write the CSV file ({err.strerror or err})") from None
    try:
        writer = csv.writer(handle)
        writer.writerow(names)
        for i in range(len(summary["runs"])):
            row = []
            for name in names:
                value = summary[name][i]
                if isinstance(value, (float, np.floating)):
                    row.append("" if not math.isfinite(value) else repr(float(value)))
                else:
                    row.append(str(value.item() if hasattr(value, "item") else value))
            writer.writerow(row)
    finally:
        if handle is not sys.stdout:
            handle.close()
    return len(summary["runs"])
