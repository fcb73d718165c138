"""Figure 13: Li, Dai, Peng's throughput optimality (arXiv 2504.07347).

Growth of the number in system (requests per second) against lambda / lambda_c under the
step batch-time model t = 11.28 + 35.47 ceil(tokens / 128) ms, lambda_c = b / (t(b)
(m_p + m_d)) from Theorem 2: a work-conserving batcher (chunked prefill, b = 250 tokens)
and the same engine capped at 64 requests in the batch; 95% intervals over replications;
the fluid drift lambda - lambda_c drawn as a line.
"""

from __future__ import annotations

import numpy as np

from experiments.common import summary
from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig13_throughput_optimal"


def main(cache=None, output=None) -> list:
    r = style.load(cache, "ldp_throughput")
    th = r["theory"]
    lam_c = th["lambda_c"]
    fig, ax = plt.subplots(figsize=(9, 5), constrained_layout=True)
    saturated = r["params"]["saturated"]
    for i, (label, by_load) in enumerate(r["points"].items()):
        keys = sorted((k for k in by_load if float(k) != saturated), key=float)
        style.sim_points(ax, [float(k) for k in keys],
                         [summary([t["growth"] for t in by_load[k]]) for k in keys], label,
                         ["#1b9e77", style.policy_color("Greedy")][i % 2], style.MARKERS[i],
                         offset=(i - 0.5) * 0.005)
    x = np.linspace(0.5, 1.25, 200)
    style.theory_line(ax, x, np.maximum(x - 1.0, 0.0) * lam_c,
                      label=r"Theorem 2: drift $(\lambda - \lambda_c)^+$")
    style.vline(ax, 1.0, rf"$\lambda_c$ = b / (t(b)(m_p + m_d)) = {lam_c:.2f} req/s")
    ax.set_yscale("symlog", linthresh=0.05, linscale=0.6)
    ax.set_xlabel(r"$\lambda / \lambda_c$")
    ax.set_ylabel("growth of the number in system [requests/s] (symlog)")
    ax.set_title("throughput optimality under the step batch-time model (CodeLlama-34B / A100)")
    ax.legend(loc="upper left", fontsize=7.5)
    p = r["params"]
    style.caption(fig, f"b = {p['token_budget']} tokens per iteration, t(b) = "
                       f"{th['t_b'] * 1e3:.2f} ms, prompts U{{{p['prompt'][0]}..{p['prompt'][1]}}}, "
                       f"decodes U{{{p['decode'][0]}..{p['decode'][1]}}}, M = {p['memory']} "
                       f"(never binds); {p['replications']} replications of {p['seconds']:g} s. "
                       + style.mode_note(r))
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
