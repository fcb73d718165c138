"""Figure 4: overflow events per slot against the slack Delta = M - E[B] E[w].

Flow control with E[B] = 12 (deterministic and Poisson budgets), saturated, on the
Section 4.1 classes.  Lines: the Chernoff bound exp(-I(M)) (reconstructed Alg. 2 bound,
dashed) and the exact FFT tail P(U > M) of the eviction-free demand (solid).  Points:
simulated overflow frequency with 95% intervals over streaming replications; triangles:
95% upper bounds (rule of three) where no overflow was seen; diamonds: rare-event
(importance sampling) estimates of P(U > M) from ``stability.theory.rare``, with
Bonferroni intervals (99% family-wise).
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig4_overflow"
COLORS = {"deterministic": "#08306b", "poisson": "#d95f02"}


def main(cache=None, output=None) -> list:
    r = style.load(cache, "overflow")
    fig, ax = plt.subplots(figsize=(8, 5.5), constrained_layout=True)
    floor = 1e-24
    for law, line in r["lines"].items():
        color = COLORS.get(law, "#444444")
        slack = np.asarray(line["slack"], float)
        fft = np.asarray(line["fft"], float)
        ch = np.asarray(line["chernoff"], float)
        style.theory_line(ax, slack, np.where(fft > floor, fft, np.nan), color=color,
                          label=f"{law}: exact tail P(U > M) (FFT)")
        style.theory_line(ax, slack, np.where(ch > floor, ch, np.nan), color=color, ls="--",
                          label=f"{law}: Chernoff bound exp(-I(M))")
        pts = r["points"][law]
        seen = [p for p in pts if p["events"] > 0]
        style.sim_points(ax, [p["slack"] for p in seen], [p["frequency"] for p in seen],
                         f"{law}: simulated (95% CI)", color, "o", log=True)
        unseen = [p for p in pts if p["events"] == 0]
        if unseen:
            ax.plot([p["slack"] for p in unseen], [p["zero_event_bound"] for p in unseen], "v",
                    color=color, ms=6, label=f"{law}: no event (95% upper bound)")
        rare = r.get("rare", {}).get(law) or []
        if rare:
            style.sim_points(ax, [p["slack"] for p in rare],
                             [{"mean": p["estimate"], "low": p["ci_low"], "high": p["ci_high"]}
                              for p in rare],
                             f"{law}: {rare[0]['method']} ({100 * rare[0].get('level', 0.95):.3g}% CI)",
                             color,
                             "D", log=True, mfc="white")
    ax.set_yscale("log")
    ax.set_ylim(floor, 2.0)
    ax.set_xlabel(r"slack $\Delta = M - E[B]\,E[w]$ [tokens]  (E[B] E[w] = 16240)")
    ax.set_ylabel("overflow events per slot")
    ax.set_title("Overflow frequency against slack: flow control, E[B] = 12, Section 4.1 classes")
    ax.legend(loc="lower left", ncol=1)
    slots = r["simulated_slots"]
    style.caption(fig, f"{slots:.3g} simulated slots in all (streaming replications, warm-up "
                       f"{r['params']['warmup']} slots removed exactly); arrivals "
                       f"{r['params']['rate_per_class']} per class per slot keep the queue "
                       "non-empty (saturated). " + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
