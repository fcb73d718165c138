"""Figure 11: Ao et al.'s limit cycles of greedy batching (arXiv 2606.15555).

Left: KV demand against time for identical requests, saturated input, started on the
eviction-free equilibrium (M = k w): Greedy stays on it when unperturbed; with one request
fewer in one slot it falls into the worst-case cycle of synchronised cohorts; under
recompute eviction it keeps evicting but without the loss; flow control (b = k) never
evicts.  Right: two classes with a common prompt: share of the second-half completions
that were evicted, per decode pair and prompt length, with the spectral radius of the
linearised Greedy map written in each cell (stable iff < 1).
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig11_limit_cycles"
COLORS = {"unperturbed": "#444444", "perturbed": style.policy_color("Greedy"),
          "recompute": "#1b9e77", "flow": style.policy_color("FlowControl")}
LABELS = {"unperturbed": "Greedy, on the equilibrium", "perturbed": "Greedy, one request fewer",
          "recompute": "Greedy, recompute eviction", "flow": "FlowControl(b = k), one fewer"}


def main(cache=None, output=None) -> list:
    r = style.load(cache, "ao_limit_cycles")
    fig = plt.figure(figsize=(13, 5.6), constrained_layout=True)
    grid = fig.add_gridspec(2, 2, width_ratios=[1.25, 1], height_ratios=[1, 1.6])
    top, left = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
    right = fig.add_subplot(grid[:, 1])
    top.sharex(left)
    first = r["homogeneous"][0]
    config = (first["l"], first["o"], first["k"])
    for h in r["homogeneous"]:
        if (h["l"], h["o"], h["k"]) != config:
            continue
        kv = np.asarray(h["kv_window"], float) / h["memory"]
        t = h["kv_window_start"] + np.arange(kv.size) - h["ramp"]
        top.step(t, kv, where="post", color=COLORS[h["variant"]], lw=1.0)
        left.step(t, h["active_window"], where="post", color=COLORS[h["variant"]], lw=1.1,
                  label=f"{LABELS[h['variant']]}: {h['throughput'] / h['equilibrium']:.3f} x M/w")
    for ax in (top, left):
        ax.axvline(0, color="#999999", ls=":", lw=1)
    top.set_ylim(0.9, 1.005)
    top.set_ylabel("KV demand / M")
    top.set_title(f"identical requests (l, o) = ({config[0]}, {config[1]}), M = {config[2]} w: "
                  "the equilibrium and the worst-case cycle")
    plt.setp(top.get_xticklabels(), visible=False)
    left.set_xlabel("slot (0 = the queue saturates; the missing request was due at -3)")
    left.set_ylabel("requests in the batch")
    left.legend(loc="lower right", fontsize=7)
    cells = r["cells"]
    prompts = sorted({c["l"] for c in cells})
    pairs = []
    for c in cells:
        if tuple(c["pair"]) not in pairs:
            pairs.append(tuple(c["pair"]))
    grid = np.full((len(pairs), len(prompts)), np.nan)
    for c in cells:
        i, j = pairs.index(tuple(c["pair"])), prompts.index(c["l"])
        grid[i, j] = float(np.mean(c["restart_share"]))
    shown = np.where(grid > 0, grid, np.nan)
    image = right.imshow(np.log10(shown), cmap="Oranges", aspect="auto", vmin=-5, vmax=-1)
    for c in cells:
        i, j = pairs.index(tuple(c["pair"])), prompts.index(c["l"])
        share = grid[i, j]
        text = f"{share:.3f}" if share > 0 else "0"
        right.text(j, i, f"{text}\nrho {c['radius']:.4f}", ha="center", va="center",
                   fontsize=6.5, color="black" if share == 0 else "white")
    right.set_xticks(range(len(prompts)), [f"l = {p}" for p in prompts])
    right.set_yticks(range(len(pairs)),
                     [f"({a}, {b}) gcd {np.gcd(a, b)}" for a, b in pairs])
    right.set_title("two classes: evicted share of second-half completions\n(white: none; "
                    "rho: spectral radius of linearised Greedy)")
    fig.colorbar(image, ax=right, label="log10 evicted share")
    p = r["params"]
    style.caption(fig, f"Saturated Greedy with restart eviction, unit slots. Two-class runs: k = "
                       f"{p['k']} per slot at the start, M = k E[w], {p['horizon']} slots, "
                       f"{p['replications']} random class orders per cell (mean shown). "
                       + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
