"""Figure 6: the Azure conv and code traces, every policy (bar charts).

Rows: token throughput, mean latency, p95 latency, KV utilisation CV, evictions; columns:
the two traces; bars grouped by offered load, one color per policy.  One deterministic
replay per bar (the trace is the sample; no interval).  The same numbers are in TRACES.md.
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig6_traces"
ROWS = [("token_throughput", "token throughput [tokens/slot]", "linear"),
        ("latency_mean", "mean latency [slots]", "log"),
        ("latency_p95", "p95 latency [slots]", "log"),
        ("demand_cv", "KV demand CV before eviction", "linear"),
        ("evictions", "evictions (whole replay)", "symlog")]


def main(cache=None, output=None) -> list:
    r = style.load(cache, "traces")
    names = list(r["traces"])
    fig, axes = plt.subplots(len(ROWS), len(names), figsize=(6 * len(names), 13),
                             constrained_layout=True, squeeze=False)
    for j, name in enumerate(names):
        tr = r["traces"][name]
        runs = tr["runs"]
        labels = list(runs[0]["policies"])
        width = 0.8 / len(labels)
        xs = np.arange(len(runs))
        for i, (metric, ylabel, scale) in enumerate(ROWS):
            ax = axes[i, j]
            for k, label in enumerate(labels):
                vals = [run["policies"][label][metric] for run in runs]
                ax.bar(xs + (k - (len(labels) - 1) / 2) * width, vals, width,
                       color=style.policy_color(label), label=label if i == 0 else None)
            ax.set_xticks(xs, [f"load {run['offered_load']:.2f}" for run in runs])
            if scale == "symlog":
                ax.set_yscale("symlog", linthresh=1)
                top = max(max(run["policies"][lb][metric] for lb in labels) for run in runs)
                ax.set_ylim(0, max(10.0, 2.0 * top))
            elif scale == "log":
                ax.set_yscale("log")
            ax.set_ylabel(ylabel)
            src = "trace" if runs[0]["source"] == "trace" else "synthetic stand-in"
            ax.set_title(f"Azure {name} ({src}): {ylabel.split(' [')[0]}")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper center",
               ncol=min(5, len(labels)), fontsize=7.5)
    style.caption(fig, f"M = {r['params']['memory']:,} tokens; real arrival times time-scaled "
                       "to each offered load (lambda E[w] / M), replayed until every request "
                       "completes; one replay per bar (no interval). mode: "
                       f"{r.get('mode', '?')}; stability "
                       f"{r.get('versions', {}).get('stability', '?')}")
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
