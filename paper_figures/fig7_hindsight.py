"""Figure 7: total latency of each policy relative to the hindsight optimum.

Jaillet et al.'s synthetic family (M ~ U{30..50}, l ~ U{1..5}, o ~ U{1..M - l}) and a
family of many small requests (M = 60, l ~ U{1..3}, o in {5, 10, 15}), all requests at slot
0 or Poisson arrivals, each instance solved to proven optimality by the integer program of
``stability.hindsight``.  Left: the
distribution of the ratio (policy / optimum) per policy.  Right: mean ratio with its 95%
interval per family, and the worst instance (open marker).
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig7_hindsight"


def main(cache=None, output=None) -> list:
    r = style.load(cache, "hindsight")
    summary = r["summary"]
    names = [n for n in r["policies"] if n in summary]
    families = r["params"]["families"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True,
                                      gridspec_kw={"width_ratios": [1, 1.3]})
    names = [n for n in names if summary[n]["all"]]
    data = [summary[n]["all"]["values"] for n in names]
    horizontal = ({"orientation": "horizontal"} if style.matplotlib_at_least(3, 10)
                  else {"vert": False})
    parts = left.boxplot(data, whis=(0, 100), widths=0.6, patch_artist=True, **horizontal)
    for patch in parts["boxes"]:
        patch.set_facecolor("#dfe8f3")
    left.set_yticks(np.arange(1, len(names) + 1), names)
    left.invert_yaxis()
    left.axvline(1.0, color=style.LIMIT, ls=":", lw=1.1)
    left.set_xlabel("total latency / hindsight optimum (whiskers: min and max)")
    left.set_title(f"all families ({r['optimal']} instances solved to optimality)")
    width = 0.8 / max(len(families), 1)
    y = np.arange(len(names))
    for k, family in enumerate(families):
        stats = [summary[n]["families"].get(family) for n in names]
        keep = [i for i, s in enumerate(stats) if s]
        mean, lo, hi = style.interval_arrays([stats[i] for i in keep])
        pos = y[keep] + (k - (len(families) - 1) / 2) * width
        color = style.MARKERS[k % len(style.MARKERS)]
        right.errorbar(mean, pos, xerr=[lo, hi], fmt=color, ms=4, linestyle="none",
                       label=f"{family} (mean, 95% CI)")
        right.plot([stats[i]["worst"] for i in keep], pos, color, mfc="white", ms=4,
                   linestyle="none", color="#888888")
    right.set_yticks(y, names)
    right.invert_yaxis()
    right.axvline(1.0, color=style.LIMIT, ls=":", lw=1.1, label="optimum")
    right.set_xscale("log")
    right.set_xlabel("total latency / hindsight optimum (log; open markers: worst instance)")
    right.set_title("mean and worst ratio per arrival family")
    right.legend(loc="lower right", fontsize=6.5)
    p = r["params"]
    tuned = ", ".join(f"{f}: b={b}" for f, b in r["tuned"].items())
    sizes = ", ".join(f"{g}: {n}" for g, n in p["n"].items())
    style.caption(fig, f"requests per instance ({sizes}), {p['per_family']} instances per "
                       f"family; FlowControl budgets b < n tuned on separate instances ({tuned}). "
                       + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
