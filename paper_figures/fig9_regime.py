"""Figure 9: the regime map, flow control against Greedy.

One panel per memory and eviction rule; columns are the decode-length families ordered
by dispersion (lattice, jittered lattices, random lengths), rows the load lambda / lambda*.
A cell is green where flow control at its tuned budget has significantly fewer requests in
the system than Greedy (paired 95% interval), red where it has significantly more, grey
where they tie.  The number in a cell is Greedy's wasted share of the tokens it decodes;
cells where Greedy thrashes (waste > 1%) are framed: the thrash boundary.
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

NAME = "fig9_regime"
COLORS = {"wins": "#1a9850", "ties": "#d9d9d9", "loses": "#d73027"}


def main(cache=None, output=None) -> list:
    from experiments.regime import FAMILIES, THRASH, thrashes

    r = style.load(cache, "regime")
    cells = r["cells"]
    families = [f for f in FAMILIES if any(c["family"] == f for c in cells)]
    loads = sorted({c["load"] for c in cells})
    panels = sorted({(c["memory_scale"], c["world_name"]) for c in cells},
                    key=lambda p: (p[0] != "paper", p[1] != "restart"))
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.5, 1.3 * len(families)) *
                                                        len(panels) / 1.6 + 1, 3.6),
                             squeeze=False, constrained_layout=True)
    for ax, (scale, world) in zip(axes[0], panels):
        mine = {(c["family"], c["load"]): c for c in cells
                if c["memory_scale"] == scale and c["world_name"] == world}
        for i, fam in enumerate(families):
            for j, load in enumerate(loads):
                c = mine.get((fam, load))
                if c is None:
                    continue
                ax.add_patch(Rectangle((i, j), 1, 1, color=COLORS[c["verdict"]], lw=0))
                waste = float(np.nanmean(c["policies"]["Greedy"]["waste_fraction"]))
                ax.text(i + 0.5, j + 0.5, f"{100 * waste:.2g}%", ha="center", va="center",
                        fontsize=7)
                if thrashes(c):
                    ax.add_patch(Rectangle((i + 0.04, j + 0.04), 0.92, 0.92, fill=False,
                                           lw=2.0, ec="black"))
        memory = next(c["memory"] for c in cells if c["memory_scale"] == scale)
        style.cell_grid(ax, [FAMILIES[f][1] for f in families], [f"{x:g}" for x in loads],
                        style.LOAD_LABEL, f"{world} eviction, M = {memory:,} ({scale})")
    handles = [Patch(color=COLORS["wins"], label="flow control wins"),
               Patch(color=COLORS["ties"], label="tie"),
               Patch(color=COLORS["loses"], label="flow control loses"),
               Patch(fill=False, ec="black", lw=2,
                     label=f"Greedy thrashes (waste > {100 * THRASH:g}%)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=4)
    fig.suptitle("Flow control (tuned budget) vs Greedy: mean number in system, paired 95% CI; "
                 "cell text = Greedy's wasted share of decoded tokens")
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
