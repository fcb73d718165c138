"""Figure 3: flow control against Greedy, watermark and Conservative (lengths unknown).

For each workload (the Section 4.1 classes under restart and under recompute eviction,
geometric decode lengths, Azure conv lengths): KV utilisation over time at one load (every
policy on the same requests), then against the load rho = lambda / lambda*: mean and p95
latency, token and request throughput in the measured window (normalised by the largest
rate Prop. 3.2 allows), the CV of the KV demand before eviction, the mean number in system,
evictions and wasted tokens per slot.  Points: means over replications with 95% intervals.
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig3_baselines"

PANELS = [  # (metric, y label, log scale, normalise)
    ("latency_mean", "mean latency [slots]", True, None),
    ("latency_p95", "p95 latency [slots]", True, None),
    ("token_throughput", r"token throughput / ($\lambda^*$ E[o])", False, "tokens"),
    ("request_throughput", r"request throughput / $\lambda^*$", False, "requests"),
    ("demand_cv", "KV demand CV before eviction", False, None),
    ("in_system", "mean number in system", True, None),
    ("eviction_rate", "evictions per slot", True, None),
    ("waste_rate", "wasted tokens per slot", True, None),
]


def main(cache=None, output=None) -> list:
    r = style.load(cache, "baselines")
    folder = style.results_dir(cache)
    names = list(r["workloads"])
    fig = plt.figure(figsize=(20, 6.4 * len(names)), constrained_layout=True)
    grid = fig.add_gridspec(2 * len(names), 5)
    for j, name in enumerate(names):
        wl = r["workloads"][name]
        labels = list(wl["curves"])
        lam_star = wl["critical_rate"]
        mean_o = wl["mean_decode"]
        src = " (synthetic stand-in)" if wl["source"] == "synthetic" else ""
        ax = fig.add_subplot(grid[2 * j, 0:2])
        s = wl["series"]
        with np.load(folder / f"baselines_series_{name}.npz") as data:
            for i, label in enumerate(s["labels"]):
                kv = data[f"kv_{i}"][s["warmup"]:]
                ax.plot(np.arange(kv.size) + s["warmup"], kv, lw=0.7,
                        color=style.policy_color(label), label=label)
        style.hline(ax, 1.0, "M")
        ax.set_ylim(0, 1.08)
        ax.set_xlabel("slot")
        ax.set_ylabel("KV utilisation R(t) / M")
        ax.set_title(f"{wl['label']}{src}:\nKV utilisation at load {s['load']:g} (one replication)")
        ax.legend(loc="lower left", ncol=2, fontsize=6.5)
        cells = [(2 * j, c) for c in (2, 3, 4)] + [(2 * j + 1, c) for c in range(5)]
        for p, ((row, col), (metric, ylabel, log, norm)) in enumerate(zip(cells, PANELS)):
            ax = fig.add_subplot(grid[row, col])
            for i, label in enumerate(labels):
                pts = wl["curves"][label]
                loads = [pt["load"] for pt in pts]
                ivs = [_scaled(pt[metric], _norm(norm, lam_star, mean_o)) for pt in pts]
                style.sim_points(ax, loads, ivs, label, style.policy_color(label),
                                 style.MARKERS[i % len(style.MARKERS)], log=log,
                                 offset=(i - 2) * 0.004)
                ax.plot(loads, [iv["mean"] for iv in ivs], lw=0.6, alpha=0.5,
                        color=style.policy_color(label))
            if norm:
                x = np.linspace(min(loads), max(loads), 50)
                style.theory_line(ax, x, np.minimum(x, 1.0), "min(rho, 1): arrivals, "
                                  "Prop. 3.2 limit", ls="--", lw=0.9)
                ax.legend(loc="lower right", fontsize=6.5)
            style.vline(ax, 1.0, None, color="#999999")
            if log:
                ax.set_yscale("log")
            ax.set_xlabel(r"load $\rho = \lambda / \lambda^*$")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{name}: {ylabel.split(' [')[0]}")
    style.caption(fig, f"{r['params']['replications']} replications of {r['params']['slots']} "
                       f"slots per point (warm-up {r['params']['warmup']}); flow control (tuned): "
                       "the two-point E[B] = m lambda, m in "
                       f"{{{', '.join(f'{m:g}' for m in r['params']['multipliers'])}}}, with the "
                       "fewest requests in system on independent seeds (Greedy is b -> "
                       "infinity). Latencies of completed requests (overloaded runs are "
                       "censored at the horizon); on log axes, interval ends at or below 0 are "
                       "drawn at 1% of the mean. " + style.mode_note(r))
    return style.save(fig, output, NAME)


def _norm(kind, lam_star, mean_o):
    return {None: 1.0, "requests": lam_star, "tokens": lam_star * mean_o}[kind]


def _scaled(iv: dict, by: float) -> dict:
    return {k: (None if iv[k] is None else iv[k] / by) for k in ("mean", "low", "high")}


if __name__ == "__main__":
    style.cli(main, __doc__)
