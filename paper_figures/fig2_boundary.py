"""Figure 2: the stability boundary on the Section 4.1 classes.

Growth rate of the number of requests in the system ((arrivals - completions) per slot
over the second half of each run) against
the per-class arrival rate, one series per policy (95% intervals over replications),
with the drift predictions lambda - E[B] (lines) and lambda = 4, lambda* = 4.0621 marked.
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig2_boundary"


def main(cache=None, output=None) -> list:
    r = style.load(cache, "boundary")
    th = r["theory"]
    fig, ax = plt.subplots(figsize=(12, 5.5), constrained_layout=True)
    rates_all = sorted({p["rate"] for c in r["curves"].values() for p in c["points"]})
    lam = np.linspace(min(rates_all), max(rates_all), 400)
    for i, (label, curve) in enumerate(r["curves"].items()):
        color = style.policy_color(label)
        rates = [p["rate"] for p in curve["points"]]
        style.sim_points(ax, rates, [p["growth"] for p in curve["points"]], label, color,
                         style.MARKERS[i % len(style.MARKERS)], offset=(i - 2) * 0.012)
        spec = curve["spec"]
        if spec["kind"] == "classes":
            style.theory_line(ax, lam, 3 * np.maximum(lam - 4.0, 0.0), color=color, ls="--",
                              lw=1.0, label=r"Alg. 1 drift $\sum_k (\lambda_k - b_k)^+$")
        elif spec["kind"] == "flow":
            style.theory_line(ax, lam, np.maximum(3 * lam - spec["budget"], 0.0), color=color,
                              ls=":", lw=1.0,
                              label=rf"drift $(\lambda - E[B])^+$, E[B] = {spec['budget']:.4g} "
                                    "(no overflow)")
    style.vline(ax, 4.0, r"$\lambda$ = b = 4", color="#777777", ls="--")
    style.vline(ax, th["critical_rate_per_class"],
                rf"$\lambda^*$ = M / E[w] = {th['critical_rate_per_class']:.4f} (Prop. 3.2)")
    ax.set_yscale("symlog", linthresh=0.01, linscale=0.6)
    ax.set_xlabel(r"arrival rate $\lambda$ per class [requests/slot]")
    ax.set_ylabel("growth rate: (arrivals - completions) / slot\n[requests/slot] (symlog)")
    ax.set_title("Stability boundary: growth of the number in system (Section 4.1 classes, "
                 "M = 16492)")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper")
    style.caption(fig, f"{r['params']['replications']} replications of {r['params']['slots']} "
                       "slots per point; growth over the second half. Tuned budget: largest "
                       f"two-point E[B] with Chernoff bound <= {r['params']['target_overflow']:g}"
                       " per slot. " + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
