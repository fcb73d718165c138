"""Figure 14: competitive ratios (Jaillet et al. 2502.07115, Feng et al. 2601.22996, Kong
et al. 2606.22327).

Left: total latency / hindsight optimum on the instances proven optimal, per family
(Jaillet et al.'s synthetic family all at once and online, and spread prompts), per
policy: boxes with whiskers at min and max; Jaillet et al.'s reported MC-SF means
marked.  Right: the blocking family: ratio against the size o_L of the long request,
offline batch (solid) and online (dashed), with the published bounds (SVF 5, GBA 10.67,
GSA 61.92) as horizontal lines.
"""

from __future__ import annotations

import numpy as np

from experiments.neighbours import blocking_ratios, ratios
from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig14_competitive"
SOURCES = ("jaillet_competitive", "kong_svf", "feng_nonclairvoyant")
POLICY_COLORS = {"MC-SF": "#1b9e77", "SVF": "#7570b3", "MC-Benchmark": "#66a61e",
                 "Greedy": style.policy_color("Greedy"),
                 "FlowControl(2)": style.policy_color("FlowControl")}
BOUNDS = {"SVF (Kong et al.) 5": 5.0, "GBA (Feng et al.) 10.67": 10.67,
          "GSA (Feng et al.) 61.92": 61.92}
REPORTED = {"batch": 1.005, "online": 1.047}


def _load(cache) -> dict:
    for name in SOURCES:  # through style.load, which records the run's mode
        try:
            return style.load(cache, name)
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"no results for {', '.join(SOURCES)}; run "
                            "`stability reproduce --only jaillet_competitive` first")


def main(cache=None, output=None) -> list:
    r = _load(cache)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True)
    families = r["params"]["families"]
    policies = list(POLICY_COLORS)
    width = 0.8 / len(policies)
    for j, policy in enumerate(policies):
        data = [ratios(r["instances"], policy, f) or [np.nan] for f in families]
        pos = np.arange(len(families)) + (j - (len(policies) - 1) / 2) * width
        parts = left.boxplot(data, positions=pos, widths=width * 0.9, whis=(0, 100),
                             patch_artist=True, manage_ticks=False)
        for patch in parts["boxes"]:
            patch.set_facecolor(POLICY_COLORS[policy])
            patch.set_alpha(0.6)
        left.plot([], [], "s", color=POLICY_COLORS[policy], label=policy)
    for i, f in enumerate(families):
        if f in REPORTED:
            left.plot([i - 0.45, i + 0.45], [REPORTED[f]] * 2, color=style.LIMIT, ls=":",
                      lw=1.2)
    left.plot([], [], color=style.LIMIT, ls=":", label="MC-SF as reported (Jaillet et al.)")
    left.set_xticks(range(len(families)), families)
    left.set_ylabel("total latency / hindsight optimum")
    left.set_title(f"instances proven optimal (n = {r['params']['n']} requests each)")
    left.legend(loc="upper left", fontsize=7)
    for policy, color in POLICY_COLORS.items():
        for online, ls in ((False, "-"), (True, "--")):
            pts = blocking_ratios(r, policy, online)
            if pts:
                o, ratio = zip(*pts)
                right.plot(o, ratio, ls, marker="o", ms=3.5, color=color,
                           label=f"{policy}, {'online' if online else 'batch'}")
    for label, value in BOUNDS.items():
        right.axhline(value, color="#777777", ls=":", lw=1)
        right.text(min(r["params"]["sizes"]), value * 1.06, label, fontsize=6.5,
                   color="#555555")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("size o_L of the long request (K = 10 o_L short ones)")
    right.set_ylabel("ratio to the optimum (lower bound: policy / a feasible schedule)")
    right.set_title("blocking family: a long request first, short ones that cannot run beside it")
    right.legend(loc="upper left", fontsize=6.5, ncol=2)
    style.caption(fig, "Left: boxes over instances (whiskers: min, max). Right: the optimum is "
                       "within one slot of a feasible schedule, so the ratios are exact to "
                       "0.1%. " + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
