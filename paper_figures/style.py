"""Shared figure style: Agg backend, one look, helpers for theory lines and simulated points.

Conventions (STYLE.md): axes labelled with units; log scales where values span decades;
theory drawn as lines, simulation as points with 95% Student-t error bars.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common import read_results  # noqa: E402

plt.rcParams.update({
    "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "legend.fontsize": 7.5,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.5, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.3, "errorbar.capsize": 2.5, "legend.frameon": False,
    "savefig.bbox": "tight", "pdf.fonttype": 42,
})

PNG_DPI = 100
THEORY = "#444444"
LIMIT = "#b22222"


def matplotlib_at_least(major: int, minor: int) -> bool:
    """Whether the installed matplotlib is at least ``major.minor`` (for renamed options)."""
    parts = matplotlib.__version__.split(".")
    return (int(parts[0]), int(parts[1])) >= (major, minor)


def policy_color(label: str) -> str:
    """One color per policy family (same in every figure)."""
    table = [("Adaptive", "#d7301f"), ("CheckedFlow", "#6a3d9a"), ("TwinFlow", "#00a6a6"), ("Alg. 1", "#7b3294"),
             ("tuned", "#1f78b4"), ("window", "#33a0c8"),
             ("FlowControl", "#08306b"), ("clearing", "#e7298a"), ("watermark", "#b15928"),
             ("Greedy", "#ff7f00"), ("Conservative", "#33a02c"), ("noisy", "#a6d854"),
             ("MC-SF", "#1b9e77"), ("MC-Benchmark", "#66a61e"), ("A_max", "#8c510a"),
             ("A_min", "#bf812d")]
    for key, color in table:
        if key in label:
            return color
    return "#666666"


MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def results_dir(cache=None) -> Path:
    """The cache directory to plot from: the given one, else the richest mode present."""
    if cache is not None:
        return Path(cache)
    from experiments.run import default_output

    root = default_output() / "cache"
    for mode in ("full", "quick", "smoke"):
        if (root / mode).is_dir():
            return root / mode
    raise FileNotFoundError(f"no results under {root}; run `stability reproduce --quick` first")


FIGURE_MODES = "figures.json"
"""In a figure directory: the mode (smoke, quick, full) of the results each figure was
last drawn from, so that ``python -m paper_figures.docs`` copies only full-run figures."""

_drawn_from: list = []  # modes of the results loaded since the last save


def load(cache, name: str) -> dict:
    results = read_results(results_dir(cache), name)
    if results is None:
        raise FileNotFoundError(f"no results for {name!r} in {results_dir(cache)}; run "
                                f"`stability reproduce --only {name}` first")
    _drawn_from.append(results.get("mode", "unknown"))
    return results


def _record_mode(out: Path, name: str) -> None:
    modes_seen = set(_drawn_from) or {"unknown"}
    _drawn_from.clear()
    mode = modes_seen.pop() if len(modes_seen) == 1 else "mixed"
    path = out / FIGURE_MODES
    try:
        modes = json.loads(path.read_text())
    except (OSError, ValueError):
        modes = {}
    modes[name] = mode
    path.write_text(json.dumps(modes, indent=1, sort_keys=True))


def output_dir(output=None) -> Path:
    if output is not None:
        return Path(output)
    from experiments.run import default_output

    return default_output()


def save(fig, output, name: str) -> list:
    """Write ``name``.png and ``name``.pdf; returns the paths."""
    out = output_dir(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=PNG_DPI)
    fig.savefig(paths[1])
    plt.close(fig)
    _record_mode(out, name)
    return paths


def interval_arrays(intervals: list) -> tuple:
    """(mean, lower error, upper error) arrays from interval dicts (nan-safe)."""
    mean = np.array([np.nan if i["mean"] is None else i["mean"] for i in intervals], float)
    low = np.array([np.nan if i["low"] is None else i["low"] for i in intervals], float)
    high = np.array([np.nan if i["high"] is None else i["high"] for i in intervals], float)
    low = np.where(np.isnan(low), mean, low)
    high = np.where(np.isnan(high), mean, high)
    return mean, np.clip(mean - low, 0, None), np.clip(high - mean, 0, None)


def sim_points(ax, x, intervals, label=None, color=None, marker="o", log=False, offset=0.0,
               **kwargs):
    """Simulated means with their 95% intervals as error bars.

    With ``log``, non-positive means are dropped and error bars are clipped at 1% of the
    mean (a lower end at or below 0 cannot be drawn on a log axis).
    """
    x = np.asarray(x, float) + offset
    mean, lo, hi = interval_arrays(intervals)
    keep = ~np.isnan(mean)
    if log:
        keep &= mean > 0
        lo = np.minimum(lo, 0.99 * mean)
    ax.errorbar(x[keep], mean[keep], yerr=[lo[keep], hi[keep]], fmt=marker, ms=4, color=color,
                label=label, elinewidth=0.9, linestyle="none", **kwargs)


def zero_event_bounds(ax, x, intervals, slots_per_replication: float, label=None,
                      color=None, level: float = 0.95) -> int:
    """Where every replication of a rate saw no event (a point a log axis cannot show),
    draw the exact Poisson upper bound at ``level`` over all its slots as a downward
    triangle (3 / slots at 95%: the rule of three).  ``intervals`` are summaries with
    per-replication ``values``; returns the number of points drawn."""
    from stability.intervals import poisson_upper

    xs, ys = [], []
    for xi, iv in zip(x, intervals):
        values = [v for v in iv.get("values") or [] if v is not None and not math.isnan(v)]
        if values and not any(values):
            xs.append(xi)
            ys.append(poisson_upper(0, slots_per_replication * len(values), level))
    if xs:
        ax.plot(xs, ys, "v", color=color, ms=6, mfc="white", linestyle="none", label=label)
    return len(xs)


def theory_line(ax, x, y, label=None, color=THEORY, ls="-", **kwargs):
    y = np.asarray(y, dtype=float)
    y = np.where(np.isfinite(y), y, np.nan)
    ax.plot(x, y, ls, color=color, label=label, **kwargs)


def vline(ax, x, label=None, color=LIMIT, ls=":", **kwargs):
    ax.axvline(x, color=color, ls=ls, lw=1.1, label=label, **kwargs)


def hline(ax, y, label=None, color=LIMIT, ls=":", **kwargs):
    ax.axhline(y, color=color, ls=ls, lw=1.1, label=label, **kwargs)


def cell_grid(ax, columns: list, rows: list, ylabel: str | None = None,
              title: str | None = None) -> None:
    """Axes of a grid of unit cells (cell (i, j) spans [i, i + 1] x [j, j + 1]): column
    labels rotated below, row labels at the left, no grid lines."""
    ax.set_xlim(0, len(columns))
    ax.set_ylim(0, len(rows))
    ax.set_xticks(np.arange(len(columns)) + 0.5)
    ax.set_xticklabels(columns, rotation=35, ha="right")
    ax.set_yticks(np.arange(len(rows)) + 0.5)
    ax.set_yticklabels(rows)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(False)


LOAD_LABEL = r"load $\lambda / \lambda^*$"


def caption(fig, text: str) -> None:
    """A small note under the figure (budget and interval statement)."""
    fig.text(0.01, -0.005, text, fontsize=7, color="#555555", ha="left", va="top", wrap=True)


def mode_note(results: dict) -> str:
    mode = results.get("mode", "?")
    return (f"mode: {mode}; error bars: 95% Student-t intervals over replications; "
            f"stability {results.get('versions', {}).get('stability', '?')}")


def finite(values) -> list:
    return [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def cli(main, description: str) -> None:
    """``python -m paper_figures.figN_... [--cache DIR] [--output DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cache", default=None,
                        help="results directory (default: paper_figures/output/cache/<richest "
                             "mode present>)")
    parser.add_argument("--output", default=None, help="figure directory (default "
                                                       "paper_figures/output)")
    args = parser.parse_args()
    for path in main(args.cache, args.output):
        print(path)
