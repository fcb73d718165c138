"""Figure 1: Section 4.1, Alg. 1 (b = 4, 4, 4) at lambda = 5 (overload) and lambda = 3.

Left: KV demand per slot with sum_k b_k w_k = 16240 and M = 16492.  Right: per-class
waiting queues with the prediction: drift lambda - b_k per slot in overload, the
stationary Lindley mean (Spitzer) when stable, plus the simulated time average over
replications (point, 95% interval).
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig1_section41"
CLASS_LABELS = ("(l, o) = (10, 20)", "(10, 40)", "(10, 60)")
CLASS_COLORS = ("#1b9e77", "#d95f02", "#7570b3")


def main(cache=None, output=None) -> list:
    r = style.load(cache, "section41")
    folder = style.results_dir(cache)
    th = r["theory"]
    memory = r["params"]["memory"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    for row, rate in enumerate(("5", "3")):
        with np.load(folder / f"section41_series_{rate}.npz") as data:
            slot, kv, cq = data["slot"], data["kv"], data["class_queue"]
        ax = axes[row, 0]
        ax.plot(slot, kv, color="#08306b", lw=0.8, label="simulated KV demand R(t)")
        style.hline(ax, th["peak_demand"], r"$\sum_k b_k w_k$ = 16240 (Thm 3.3)",
                    color=style.THEORY, ls="--")
        style.hline(ax, memory, f"M = {memory}", color=style.LIMIT, ls="-")
        ax.set_ylim(0, memory * 1.08)
        ax.set_xlabel("slot")
        ax.set_ylabel("KV demand [tokens]")
        ax.set_title(f"lambda = {rate} per class: KV demand (Alg. 1, b = 4, 4, 4)")
        ax.legend(loc="lower right")
        ax = axes[row, 1]
        point = r["points"][rate]
        for k in range(cq.shape[0]):
            if rate == "5":
                ax.plot(slot, cq[k], color=CLASS_COLORS[k], lw=0.8,
                        label=f"class {k} {CLASS_LABELS[k]}")
            else:  # a noisy small queue: the raw series faint, its running average bold
                ax.plot(slot, cq[k], color=CLASS_COLORS[k], lw=0.5, alpha=0.25)
                ax.plot(slot, np.cumsum(cq[k]) / (slot + 1), color=CLASS_COLORS[k], lw=1.6,
                        label=f"class {k} {CLASS_LABELS[k]}: running time average")
        if rate == "5":
            drift = th["drift_per_class_overload"]
            style.theory_line(ax, slot, drift * (slot + 1),
                              f"prediction (lambda - b) t = {drift:g} t", ls="--")
            g = point["growth"]
            ax.set_title(f"lambda = 5: per-class queues; growth {g['mean']:.3f} "
                         f"[{g['low']:.3f}, {g['high']:.3f}] req/slot (theory 3)")
        else:
            style.hline(ax, th["lindley_mean_queue"],
                        f"Lindley mean E[Q] = {th['lindley_mean_queue']:.3f}", color=style.THEORY,
                        ls="--")
            q = point["queue_per_class"]
            style.sim_points(ax, [slot[-1] * 1.03], [q], "time average over replications",
                             color="black", marker="D")
            ax.set_ylim(0, max(6.0, 4 * th["lindley_mean_queue"]))
            ax.set_title("lambda = 3: per-class queues (stable; raw series faint)")
        ax.set_xlabel("slot")
        ax.set_ylabel("waiting requests")
        ax.legend(loc="upper left")
    style.caption(fig, "Section 4.1: classes (l, o) = (10, 20), (10, 40), (10, 60), M = 16492. "
                       "Series: one replication; the growth ((arrivals - completions) / slot "
                       "over the second half) and the time average come from "
                       f"{r['points']['5']['runs']} replications of {r['params']['slots']} slots. "
                  + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
