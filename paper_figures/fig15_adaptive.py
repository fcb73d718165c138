"""Figure 15: adaptive flow control (no budget) against Greedy and tuned flow control.

One panel per latency metric (mean, p95); one column per regime-map cell (decode-length
family, eviction rule, load).  Each policy's latency is shown relative to the better of
Greedy and flow control at its tuned budget in that cell (1 = the better one), with the
95% interval of the paired ratio over replications; the band marks the 5% tolerance of the
VERIFICATION row.  Cells where the adaptive policy switched to its budget are starred.
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig15_adaptive"


def main(cache=None, output=None) -> list:
    from experiments.adaptive import METRICS, POLICIES, TOLERANCE, better
    from experiments.common import Interval

    r = style.load(cache, "adaptive")
    cells = r["cells"]
    fig, axes = plt.subplots(len(METRICS), 1, figsize=(max(6.0, 0.45 * len(cells) + 2), 6.4),
                             sharex=True, squeeze=False, constrained_layout=True)
    x = np.arange(len(cells))
    for ax, metric in zip(axes[:, 0], METRICS):
        ax.axhspan(1.0, 1.0 + TOLERANCE, color="#d9d9d9", lw=0, label="within 5%")
        ax.axhline(1.0, color=style.THEORY, lw=0.8)
        for k, label in enumerate(POLICIES):
            ratios = []
            for e in cells:
                ref = np.asarray(e["policies"][better(e, metric)][metric], float)
                mine = np.asarray(e["policies"][label][metric], float)
                ratios.append(Interval.of(mine / ref).to_dict())
            style.sim_points(ax, x, ratios, label=label, color=style.policy_color(label),
                             marker=style.MARKERS[k], log=True, offset=(k - 1) * 0.18)
        ax.set_yscale("log")
        ax.set_ylabel(f"{metric.replace('_', ' ')} / better of the two")
    labels = []
    for e in cells:
        star = "*" if sum(e["policies"]["AdaptiveFlow"].get("switches") or [0]) else ""
        labels.append(f"{e['label']}, {e['world_name']}, {e['load']:g}{star}")
    axes[-1, 0].set_xticks(x)
    axes[-1, 0].set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
    axes[0, 0].legend(loc="upper left", fontsize=7)
    fig.suptitle("Adaptive flow control (defaults) vs Greedy and tuned flow control; "
                 "* = switched to its budget")
    style.caption(fig, style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    main()
