"""Figure 10: the Section 4.2 setting -- Azure traces in seconds under the Jaillet clock.

One column per trace and KV capacity M; rows: mean and p95 end-to-end latency and mean
TTFT (seconds, log scale) at every load, and the completions per second with the critical
rate per second lambda*_s (no scheduler is stable above it) drawn as a line.  In a panel
each policy is a row; colours are the worlds (vLLM: evicted requests keep their tokens,
front requeue, blocks of 16; restart: the paper's model), marker shapes the loads.  Points:
means over disjoint trace chunks with 95% intervals.
"""

from __future__ import annotations

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig10_section42"
PANELS = [("e2e_mean", "mean end-to-end latency [s]", True),
          ("e2e_p95", "p95 end-to-end latency [s]", True),
          ("ttft_mean", "mean TTFT [s]", True),
          ("request_throughput", "completions per second", False)]
WORLD_COLORS = {"vllm": "#1f78b4", "restart": "#e66101"}


def main(cache=None, output=None) -> list:
    r = style.load(cache, "section42")
    cells = r["cells"]
    columns = list(dict.fromkeys((c["trace"], c["memory"]) for c in cells))
    loads = sorted({c["load"] for c in cells})
    worlds = list(dict.fromkeys(c["world"] for c in cells))
    labels = list(cells[0]["runs"])
    fig, axes = plt.subplots(len(PANELS), len(columns), squeeze=False,
                             figsize=(4.4 * len(columns), 2.9 * len(PANELS)),
                             constrained_layout=True)
    combos = [(w, load) for w in worlds for load in loads]
    step = 0.7 / max(len(combos), 1)
    y = np.arange(len(labels))
    for j, (trace, memory) in enumerate(columns):
        src = r["info"][trace]["source"]
        crit = r["info"][trace]["critical"][f"{memory}"]["per_second"]
        for i, (metric, xlabel, log) in enumerate(PANELS):
            ax = axes[i][j]
            for k, (world, load) in enumerate(combos):
                cell = next((c for c in cells if (c["trace"], c["memory"], c["world"])
                             == (trace, memory, world) and c["load"] == load), None)
                if cell is None:
                    continue
                ivs = [cell["summary"][label][metric] for label in labels]
                mean, lo, hi = style.interval_arrays(ivs)
                if log:
                    lo = np.minimum(lo, 0.99 * mean)
                pos = y + (k - (len(combos) - 1) / 2) * step
                ax.errorbar(mean, pos, xerr=[lo, hi], fmt=style.MARKERS[loads.index(load) %
                                                                       len(style.MARKERS)],
                            ms=4, color=WORLD_COLORS.get(world, "#555555"), linestyle="none",
                            elinewidth=0.9, label=f"{world}, load {load:g}")
            if metric == "request_throughput":
                style.vline(ax, crit, r"$\lambda^*_s$ (necessary bound)")
            ax.set_yticks(y, labels if j == 0 else [""] * len(labels), fontsize=7)
            ax.invert_yaxis()
            if log:
                ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            if i == 0:
                syn = " (synthetic stand-in)" if src == "synthetic" else ""
                ax.set_title(f"Azure {trace}{syn}, M = {memory:,}\n"
                             f"lambda*_s = {crit:.3g} req/s", fontsize=9)
            if i == 0 and j == len(columns) - 1:
                ax.legend(loc="lower right", fontsize=6.5)
    p = r["params"]
    style.caption(fig, f"Jaillet clock (Llama2-70B, 2 x A100); loads are fractions of "
                       f"lambda*_s; {p['chunks']} disjoint chunks of {p['chunk']} requests per "
                       "point, every policy on the same chunks, run to completion; flow "
                       "control's two-point budget tuned on an independent Poisson replay of "
                       "the trace's (prompt, decode) pairs. " + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
