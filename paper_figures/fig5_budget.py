"""Figure 5: sensitivity to the flow-control budget E[B] (geometric decode lengths).

One column per load (0.7 and 0.9 of lambda*).  Rows: latency (mean, p95), token
throughput, overflow events per slot, evictions per slot and mean queueing delay against
E[B], with the budget window (lambda, M / E[w]) shaded and the tuner's choice marked.
Lines: Lindley mean latency (queueing delay + E[o]); min(E[B], lambda) E[o]; Chernoff
bound and exact FFT tail of the saturated demand and the compound-Poisson prediction of
an unthrottled system.  Points: simulation, 95% intervals; triangles: budgets with no
overflow (or no eviction) in any replication, drawn at the 95% exact Poisson upper bound
over all their measured slots (a zero cannot be drawn on a log axis).
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig5_budget"
FLOW = "#1f78b4"
GREEDY = style.policy_color("Greedy")


def main(cache=None, output=None) -> list:
    r = style.load(cache, "budget")
    th = r["theory"]
    tuned = th["tuned"]["budget"]
    lines = th["lines"]
    mean_o = th["mean_decode"]
    loads = list(r["loads"].values())
    params = r["params"]
    measured = params["slots"] - params.get("warmup", 0)  # slots per replication
    fig, axes = plt.subplots(4, len(loads), figsize=(6.2 * len(loads), 14),
                             constrained_layout=True, squeeze=False)
    for j, at in enumerate(loads):
        pts, q = at["points"], at["theory"]
        x = [p["budget"] for p in pts]
        lam = at["arrival_rate"]
        head = f"load {at['load']:g} (lambda = {lam:.3f}/slot)"
        ax = axes[0, j]
        style.sim_points(ax, x, [p["latency_mean"] for p in pts], "mean latency", FLOW, "o",
                         log=True)
        style.sim_points(ax, x, [p["latency_p95"] for p in pts], "p95 latency", FLOW, "s",
                         log=True, mfc="white")
        style.theory_line(ax, q["latency_budget"], q["latency"],
                          "Lindley mean delay + E[o] (no overflow)", ls="--")
        for key, ls in (("latency_mean", "-"), ("latency_p95", "-.")):
            style.hline(ax, at["greedy"][key]["mean"], f"Greedy {key.split('_')[1]}",
                        color=GREEDY, ls=ls)
        ax.set_yscale("log")
        ax.set_ylabel("latency [slots]")
        ax.set_title(f"{head}: latency")
        ax = axes[1, j]
        style.sim_points(ax, x, [p["token_throughput"] for p in pts], "simulated", FLOW, "o")
        xb = np.asarray(q["latency_budget"])
        style.theory_line(ax, xb, np.minimum(xb, lam) * mean_o,
                          r"min(E[B], $\lambda$) E[o] (no overflow)", ls="--")
        style.hline(ax, at["greedy"]["token_throughput"]["mean"], "Greedy", color=GREEDY,
                    ls="-")
        ax.set_ylabel("token throughput [tokens/slot]")
        ax.set_title(f"{head}: token throughput")
        ax = axes[2, j]
        style.sim_points(ax, x, [p["overflow_rate"] for p in pts], "simulated", FLOW, "o",
                         log=True)
        style.zero_event_bounds(ax, x, [p["overflow_rate"] for p in pts], measured,
                                "no overflow seen (95% upper bound)", FLOW)
        style.theory_line(ax, lines["budget"], lines["chernoff"],
                          "Chernoff bound, saturated (reconstruction)", ls="--")
        style.theory_line(ax, lines["fft_budget"], lines["fft"],
                          "exact tail P(U > M), saturated", ls="-", marker=".", ms=3)
        style.hline(ax, q["unthrottled"], "compound Poisson (unthrottled) bound",
                    color="#777777", ls="-.")
        style.hline(ax, th["tuned"]["target_overflow"], "target 1e-3", color=style.LIMIT, ls=":")
        ax.set_yscale("log")
        ax.set_ylim(1e-9, 2)
        ax.set_ylabel("overflow events per slot")
        ax.set_title(f"{head}: overflow frequency")
        ax = axes[3, j]
        style.sim_points(ax, x, [p["eviction_rate"] for p in pts], "evictions per slot", FLOW,
                         "o", log=True)
        style.zero_event_bounds(ax, x, [p["eviction_rate"] for p in pts], measured,
                                "no eviction seen (95% upper bound)", FLOW)
        style.sim_points(ax, x, [p["queueing_delay_mean"] for p in pts],
                         "mean queueing delay [slots]", "#6a3d9a", "s", log=True)
        ax.set_yscale("log")
        ax.set_ylabel("evictions per slot; delay [slots]")
        ax.set_title(f"{head}: evictions and queueing delay")
        for ax in axes[:, j]:
            ax.axvspan(at["window"]["low"], at["window"]["high"], color="#a6cee3", alpha=0.25,
                       lw=0, label=r"budget window ($\lambda$, M / E[w])")
            style.vline(ax, tuned, f"tuner's choice E[B] = {tuned:.3f}", color="#e31a1c",
                        ls="--")
            ax.set_xlabel("flow-control budget E[B] [activations/slot] (two-point law)")
            ax.legend(loc="best", fontsize=6.5)
    style.caption(fig, f"l = 10, o ~ Geometric(mean 40), M = {r['params']['memory']}, Poisson "
                       f"arrivals; {r['params']['replications']} replications of "
                       f"{r['params']['slots']} slots per budget; tuner: largest two-point E[B] "
                       f"with Chernoff bound <= {th['tuned']['target_overflow']:g} per slot. "
                  + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
