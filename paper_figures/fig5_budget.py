"""Figure 5: sensitivity to the flow-control budget E[B] (geometric decode lengths, load 0.7).

Latency (mean, p95), token throughput, overflow events per slot and evictions per slot
against E[B], with the budget window (lambda, M / E[w]) shaded and the tuner's choice
marked.  Lines: Lindley mean latency (queueing delay + E[o]); offered and feasible
throughput; Chernoff bound and exact FFT tail of the saturated demand, and the
compound-Poisson prediction of an unthrottled system.  Points: simulation, 95% intervals.
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
    pts = r["points"]
    x = [p["budget"] for p in pts]
    lam, lam_star = th["arrival_rate"], th["critical_rate"]
    tuned = th["tuned"]["budget"]
    lines = th["lines"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    ax = axes[0, 0]
    style.sim_points(ax, x, [p["latency_mean"] for p in pts], "mean latency", FLOW, "o", log=True)
    style.sim_points(ax, x, [p["latency_p95"] for p in pts], "p95 latency", FLOW, "s", log=True,
                     mfc="white")
    style.theory_line(ax, lines["budget"], lines["latency"],
                      "Lindley mean delay + E[o] (no overflow)", ls="--")
    for key, ls in (("latency_mean", "-"), ("latency_p95", "-.")):
        style.hline(ax, r["greedy"][key]["mean"], f"Greedy {key.split('_')[1]}", color=GREEDY,
                    ls=ls)
    ax.set_yscale("log")
    ax.set_ylabel("latency [slots]")
    ax.set_title("latency against the budget")
    ax = axes[0, 1]
    mean_o = th["mean_decode"]
    style.sim_points(ax, x, [p["token_throughput"] for p in pts], "simulated", FLOW, "o")
    xb = np.asarray(lines["budget"])
    style.theory_line(ax, xb, np.minimum(xb, lam) * mean_o,
                      r"min(E[B], $\lambda$) E[o] (no overflow)", ls="--")
    style.hline(ax, r["greedy"]["token_throughput"]["mean"], "Greedy", color=GREEDY, ls="-")
    ax.set_ylabel("token throughput [tokens/slot]")
    ax.set_title("token throughput against the budget")
    ax = axes[1, 0]
    style.sim_points(ax, x, [p["overflow_rate"] for p in pts], "simulated", FLOW, "o", log=True)
    style.theory_line(ax, lines["budget"], lines["chernoff"],
                      "Chernoff bound, saturated (reconstruction)", ls="--")
    style.theory_line(ax, lines["fft_budget"], lines["fft"], "exact tail P(U > M), saturated",
                      ls="-", marker=".", ms=3)
    style.hline(ax, th["unthrottled"], "compound Poisson (unthrottled) bound", color="#777777",
                ls="-.")
    style.hline(ax, th["tuned"]["target_overflow"], "target 1e-3", color=style.LIMIT, ls=":")
    ax.set_yscale("log")
    ax.set_ylim(1e-9, 2)
    ax.set_ylabel("overflow events per slot")
    ax.set_title("overflow frequency against the budget")
    ax = axes[1, 1]
    style.sim_points(ax, x, [p["eviction_rate"] for p in pts], "evictions per slot", FLOW, "o",
                     log=True)
    style.sim_points(ax, x, [p["queueing_delay_mean"] for p in pts], "mean queueing delay [slots]",
                     "#6a3d9a", "s", log=True)
    ax.set_yscale("log")
    ax.set_ylabel("per slot / slots")
    ax.set_title("evictions and queueing delay against the budget")
    for ax in axes.flat:
        ax.axvspan(lam, lam_star, color="#a6cee3", alpha=0.25, lw=0,
                   label=r"budget window ($\lambda$, M / E[w])")
        style.vline(ax, tuned, f"tuner's choice E[B] = {tuned:.3f}", color="#e31a1c", ls="--")
        ax.set_xlabel("flow-control budget E[B] [activations/slot] (two-point law)")
        ax.legend(loc="best", fontsize=6.5)
    style.caption(fig, f"l = 10, o ~ Geometric(mean 40), M = {r['params']['memory']}, Poisson "
                       f"arrivals lambda = {lam:.3f}/slot (load {r['params']['load']:g}); "
                       f"{r['params']['replications']} replications of {r['params']['slots']} "
                       "slots per budget. " + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
