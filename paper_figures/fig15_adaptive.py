"""Figure 15: adaptive flow control (no budget) against Greedy and tuned flow control, and
its budgeted mode at a tuned budget (CheckedFlow).

Up to COLUMNS cells (the quick map): one panel per latency metric (mean, p95), one column
per cell (decode-length family, eviction rule, load); each policy's latency relative to the
better of Greedy and flow control at its tuned budget in that cell (1 = the better one),
with the 95% interval of the paired ratio; the band marks the 5% tolerance of the
VERIFICATION row; cells where the adaptive policy switched to its budget are starred.
More cells (the full map): the regime map's layout (one panel per memory and eviction rule,
family x load), each cell coloured and labelled by the adaptive policy's mean latency over
the better one, outlined where it switched; the trace replays in a last panel; a second
row of panels the same for CheckedFlow at its tuned budget, and a third for TwinFlow.
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

NAME = "fig15_adaptive"
COLUMNS = 40


def _switched(cell) -> bool:
    return bool(sum(cell["policies"]["AdaptiveFlow"].get("switches") or [0]))


def _ratio(cell, better, label="AdaptiveFlow") -> float:
    ref = np.asarray(cell["policies"][better(cell, "latency_mean")]["latency_mean"], float)
    mine = np.asarray(cell["policies"][label]["latency_mean"], float)
    return float(np.nanmean(mine) / np.nanmean(ref))


def _map(r, output) -> list:
    """The full map: the regime map's layout, cells coloured by adaptive / better (mean);
    a second row the same for the budgeted mode at its tuned budget (CheckedFlow), a third
    for TwinFlow."""
    from experiments.adaptive import CHECKED, TWIN, better
    from experiments.regime import FAMILIES

    grid = [c for c in r["cells"] if c.get("memory_scale")]
    replays = [c for c in r["cells"] if not c.get("memory_scale")]
    families = [f for f in FAMILIES if any(c["family"] == f for c in grid)]
    loads = sorted({c["load"] for c in grid})
    panels = sorted({(c["memory_scale"], c["world_name"]) for c in grid},
                    key=lambda p: (p[0] != "paper", p[1] != "restart"))
    labels = ["AdaptiveFlow"] + [x for x in (CHECKED, TWIN)
                                 if all(x in c["policies"] for c in r["cells"])]
    fig, axes = plt.subplots(len(labels), len(panels) + bool(replays),
                             figsize=(2.2 + 1.05 * len(families) * len(panels) / 1.4,
                                      0.4 + 3.4 * len(labels)),
                             squeeze=False, constrained_layout=True)
    norm = LogNorm(0.8, 2.0)
    cmap = plt.get_cmap("RdYlGn_r")

    def draw(ax, i, j, c, label):
        ratio = _ratio(c, better, label)
        ax.add_patch(Rectangle((i, j), 1, 1, color=cmap(norm(np.clip(ratio, 0.8, 2.0))), lw=0))
        ax.text(i + 0.5, j + 0.5, f"{ratio:.2f}", ha="center", va="center", fontsize=7)
        if label == "AdaptiveFlow" and _switched(c):
            ax.add_patch(Rectangle((i + 0.04, j + 0.04), 0.92, 0.92, fill=False, lw=2.0,
                                   ec="black"))

    for row, label in zip(axes, labels):
        name = {"AdaptiveFlow": "adaptive", CHECKED: "budgeted mode, tuned b"}.get(label,
                                                                                "twin-tuned")
        for ax, (scale, world) in zip(row, panels):
            for c in grid:
                if c["memory_scale"] == scale and c["world_name"] == world:
                    draw(ax, families.index(c["family"]), loads.index(c["load"]), c, label)
            memory = next(c["memory"] for c in grid if c["memory_scale"] == scale)
            style.cell_grid(ax, [FAMILIES[f][1] for f in families], [f"{x:g}" for x in loads],
                            style.LOAD_LABEL, f"{name}: {world}, M = {memory:,} ({scale})")
        if replays:
            ax = row[-1]
            traces = sorted({c["family"] for c in replays})
            rloads = sorted({c["load"] for c in replays})
            for c in replays:
                draw(ax, traces.index(c["family"]), rloads.index(c["load"]), c, label)
            style.cell_grid(ax, [t.replace("-trace", "") for t in traces],
                            [f"{x:g}" for x in rloads], title=f"{name}: trace replays")
    fig.suptitle("Mean latency / the better of Greedy and tuned flow control: adaptive flow "
                 "control (defaults; outlined = switched to its budget)"
                 + "".join(f"; {x}" for x in labels[1:]))
    style.caption(fig, style.mode_note(r))
    return style.save(fig, output, NAME)


def main(cache=None, output=None) -> list:
    from experiments.adaptive import METRICS, POLICIES, TOLERANCE, better
    from experiments.common import Interval

    r = style.load(cache, "adaptive")
    cells = r["cells"]
    if len(cells) > COLUMNS:
        return _map(r, output)
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
        star = "*" if _switched(e) else ""
        labels.append(f"{e['label']}, {e['world_name']}, {e['load']:g}{star}")
    axes[-1, 0].set_xticks(x)
    axes[-1, 0].set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
    axes[0, 0].legend(loc="upper left", fontsize=7)
    fig.suptitle("Adaptive flow control (defaults), its budgeted mode at a tuned budget "
                 "(CheckedFlow) and twin-tuned flow control (TwinFlow) vs Greedy and tuned flow "
                 "control; * = adaptive switched")
    style.caption(fig, style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
