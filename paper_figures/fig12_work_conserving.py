"""Figure 12: Nie et al.'s stability boundary against lambda (arXiv 2605.04595), and the
disagreement with Greedy's thrashing.

Left: growth of the number in system against lambda / mu (unit slots, mu = M / E[g]) for
the vLLM v1 configuration with uniform lengths and for Greedy on the Section 4.1 lattice
with restart and with recompute eviction; mu (1 - delta) and mu marked.  Right: the
growth at 3.75 requests per class and slot (0.923 mu) as one assumption changes at a time
(eviction rule, requeue position, lattice, batch-time clock), 99% intervals.
"""

from __future__ import annotations

import numpy as np

from experiments.common import Interval
from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig12_work_conserving"
CURVE_COLORS = ["#1b9e77", style.policy_color("Greedy"), "#7570b3"]


def main(cache=None, output=None) -> list:
    r = style.load(cache, "nie_stability")
    th = r["theory"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True)
    for i, (label, pts) in enumerate(r["curves"].items()):
        style.sim_points(left, [p["load"] for p in pts], [p["growth"] for p in pts], label,
                         CURVE_COLORS[i % len(CURVE_COLORS)], style.MARKERS[i],
                         offset=(i - 1) * 0.004)
    x = np.linspace(min(p["load"] for pts in r["curves"].values() for p in pts), 1.25, 200)
    style.theory_line(left, x, np.maximum(x - 1.0, 0.0) * th["uniform"]["mu_slot"],
                      label=r"fluid drift $(\lambda - \mu)^+$, uniform lengths")
    style.vline(left, 1 - th["uniform"]["delta"], r"$\mu(1-\delta)$, uniform lengths",
                color="#777777", ls="--")
    style.vline(left, 1.0, r"$\mu = M / (\bar b\, E[g])$")
    left.set_yscale("symlog", linthresh=0.01, linscale=0.6)
    left.set_xlabel(r"$\lambda / \mu$")
    left.set_ylabel("growth of the number in system [requests/slot] (symlog)")
    left.set_title("stability boundary against lambda (unit slots)")
    left.legend(loc="upper left", fontsize=7)
    cells = dict(r["cells"])
    timed = r["timed"]
    labels, ivs, colors = [], [], []
    for key, values in cells.items():
        labels.append(key + ", unit slots")
        ivs.append(Interval.of(values, 0.99))
        colors.append("#d95f02" if "restart" in key else "#1b9e77")
    if timed.get("jitter"):
        labels.append("Greedy, restart, lengths +-5, unit slots")
        ivs.append(Interval.of([t["growth"] for t in timed["jitter"]], 0.99))
        colors.append("#7570b3")
    if timed.get("lattice restart"):
        scale = th["lattice"]["batch_time"]  # per second -> per iteration at b
        labels.append("Greedy, restart, Jaillet clock (x b)")
        ivs.append(Interval.of([t["growth"] * scale for t in timed["lattice restart"]], 0.99))
        colors.append("#e7298a")
    y = np.arange(len(labels))
    mean = np.array([iv.mean for iv in ivs])
    err = np.array([[iv.mean - iv.low, iv.high - iv.mean] for iv in ivs]).T
    right.barh(y, mean, color=colors, alpha=0.75)
    right.errorbar(mean, y, xerr=np.nan_to_num(err), fmt="none", color="black", lw=0.9)
    right.set_yticks(y, labels, fontsize=7)
    right.invert_yaxis()
    right.axvline(0, color="#999999", lw=0.8)
    right.set_xscale("symlog", linthresh=0.01, linscale=0.6)
    right.set_xlabel("growth [requests/slot] (symlog; 99% CI)")
    right.set_title(f"Sec. 4.1 lattice at {r['params']['lattice_rate']:g} req/class/slot = "
                    f"{r['params']['load_cell']:.3f} mu")
    p = r["params"]
    style.caption(fig, f"M = {p['memory']}; vLLM v1 configuration: FCFS, chunked prefill "
                       f"(8192 tokens), recompute, front requeue, block 1; "
                       f"{p['replications']} replications of {p['slots']} slots per point "
                       f"(cells: {p['cell_replications']}). " + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
