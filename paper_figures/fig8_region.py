"""Figure 8 (issue 16): where flow control is stable.

One panel per workload and budget law, in the plane (lambda / lambda*, E[B] / lambda*).
Simulation as points: each tested point coloured by its verdict (stable, unstable,
undecided; growth of the number in system, 99% interval over replications), and the
measured boundary lambda = mu_sat(E[B]) (saturated completion rate, with its 95% interval)
as points with horizontal error bars.  Theory as lines: the reconstructed budget window
lambda < E[B] < M / E[w] (shaded wedge) and the boundary of the effective-rate condition
lambda = E[B] - r_bar(E[B]) (Chernoff line; exact FFT points where the mode computed them).
Points where the reconstructed window and the measurement disagree are ringed: unstable
inside the window (the window is not sufficient) and stable above it (its upper end is not
necessary).
"""

from __future__ import annotations

import math

import numpy as np

from paper_figures import style  # first: selects the Agg backend

import matplotlib.pyplot as plt  # noqa: E402

NAME = "fig8_region"
COLORS = {"stable": "#1a9850", "unstable": "#d73027", "undecided": "#999999"}
MARKS = {"stable": "o", "unstable": "X", "undecided": "s"}
SHORT = {"paper-4.1": "Sec. 4.1 classes", "geometric": "geometric o", "azure-conv": "Azure conv"}


def _panel(ax, panel: dict) -> None:
    th = panel["theory"]
    lam_star = panel["critical_rate"]
    pts = panel["points"]
    ymax = max(1.55, max(p["budget"] for p in pts) + 0.05)
    xmin = min(0.45, min(p["load"] for p in pts) - 0.05)
    # reconstructed window: lambda < E[B] < M / E[w]
    xs = np.linspace(xmin, 1.0, 50)
    ax.fill_between(xs, xs, 1.0, color="#4575b4", alpha=0.10, lw=0,
                    label=r"reconstructed window $\lambda < E[B] < M/E[w]$")
    style.theory_line(ax, [xmin, 1.0], [xmin, 1.0], color="#4575b4", ls="-", lw=0.8)
    style.hline(ax, 1.0, color="#4575b4", ls="-")
    style.vline(ax, 1.0, r"$\lambda^* = M/E[w]$ (Prop. 3.2)", color="#777777", ls="--")
    # effective-rate condition: lambda = E[B] - r_bar(E[B]) (x as a function of y)
    line = th["line"]
    ly = np.asarray(line["budget"], float)
    lx = ly - np.asarray(line["loss_chernoff"], float) / lam_star
    keep = np.isfinite(lx) & (lx > xmin)
    cert_label = r"certified: $\lambda < E[B] - \bar r(E[B])$"
    if keep.any() and panel["law"] == "deterministic":  # integer budgets: one bar each
        ax.hlines(ly[keep], xmin, lx[keep], color="#542788", alpha=0.3, lw=4,
                  label=cert_label)
    elif keep.any():
        ax.fill_betweenx(ly, xmin, np.where(keep, lx, xmin), where=keep, color="#542788",
                         alpha=0.12, lw=0, label=cert_label)
    style.theory_line(ax, lx[keep], ly[keep], color="#542788", ls="-",
                      label=r"$\lambda = E[B] - \bar r(E[B])$, Chernoff $\bar r$", lw=1.6,
                      marker="." if panel["law"] == "deterministic" else None)
    if th["loss_method"] != "chernoff":
        py = np.asarray(th["points"]["budget"], float)
        px = py - np.asarray(th["points"]["loss"], float) / lam_star
        keep = np.isfinite(px) & (px > xmin)
        ax.plot(px[keep], py[keep], "--", color="#542788", lw=1.0, marker="d", ms=4,
                label=rf"same, {th['loss_method']} $\bar r$ (at the tested budgets)")
    # measured boundary: lambda = mu_sat(E[B])
    sat = panel["saturated"]
    mu = [s["completion"] for s in sat]
    mean, lo, hi = style.interval_arrays(mu)
    ax.errorbar(mean, [s["budget"] for s in sat], xerr=[lo, hi], fmt="D", ms=4,
                color="black", mfc="white", elinewidth=0.9, ls="-", lw=0.7,
                label=r"measured boundary $\lambda = \mu_{sat}(E[B])$")
    # grid points by verdict, ringed where the window disagrees with the measurement
    for v in ("stable", "undecided", "unstable"):
        sel = [p for p in pts if p["verdict"] == v]
        if sel:
            ax.scatter([p["load"] for p in sel], [p["budget"] for p in sel], s=22,
                       marker=MARKS[v], color=COLORS[v], zorder=3, lw=0.5,
                       label=f"simulated: {v}")
    not_sufficient = [p for p in pts if p["load"] < p["budget"] < 1.0
                      and p["verdict"] == "unstable"]
    not_necessary = [p for p in pts if p["budget"] >= 1.0 and p["verdict"] == "stable"]
    if not_sufficient:
        ax.scatter([p["load"] for p in not_sufficient], [p["budget"] for p in not_sufficient],
                   s=130, facecolors="none", edgecolors="#d73027", lw=1.4, zorder=4,
                   label="disagrees: unstable inside the window")
    if not_necessary:
        ax.scatter([p["load"] for p in not_necessary], [p["budget"] for p in not_necessary],
                   s=90, facecolors="none", edgecolors="#1a9850", lw=1.0, zorder=4,
                   label="disagrees: stable above the window")
    if panel["kind"] == "paper-4.1" and panel["law"] == "deterministic":
        x39 = 3 * 3.9 / lam_star
        if any(abs(p["load"] - x39) < 1e-4 and abs(p["budget"] * lam_star - 12) < 1e-6
               for p in pts):
            ax.annotate("3.9 per class, b = 12", (x39, 12 / lam_star),
                        xytext=(x39 - 0.3, 12 / lam_star + 0.17), fontsize=7,
                        arrowprops=dict(arrowstyle="->", lw=0.7))
    cert = th["certified"].get(th["loss_method"]) or th["certified"]["chernoff"]
    capacity = max((m for m in mean if np.isfinite(m)), default=math.nan)
    short = SHORT.get(panel["kind"], panel["kind"])
    ax.set_title(f"{short}, {panel['law']} budget, M = {panel['memory']:,}\n"
                 f"certified {cert['fraction']:.3f}, measured {capacity:.3f} "
                 r"$\lambda^*$", fontsize=8)
    ax.set_xlim(xmin, 1.02)
    ax.set_ylim(min(0.5, min(p["budget"] for p in pts) - 0.05), ymax)
    ax.set_xlabel(r"arrival rate $\lambda/\lambda^*$")
    ax.set_ylabel(r"mean budget $E[B]/\lambda^*$")


def main(cache=None, output=None) -> list:
    r = style.load(cache, "region")
    panels = list(r["panels"].values())
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    # one extra row for the legend and the caption, so that they never overlap
    foot_height = 1.6 if ncol > 1 else 2.3  # legend in 3 (or 2) columns, then the caption
    fig, axes = plt.subplots(nrow + 1, ncol,
                             figsize=(max(4.3 * ncol, 7.0), 3.7 * nrow + foot_height + 0.4),
                             squeeze=False, constrained_layout=True,
                             gridspec_kw={"height_ratios": [3.7] * nrow + [foot_height]})
    flat = [ax for row in axes[:nrow] for ax in row]
    for ax, p in zip(flat, panels):
        _panel(ax, p)
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    handles = {}
    for ax in flat[:len(panels)]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    gs = axes[nrow][0].get_gridspec()
    for ax in axes[nrow]:
        ax.remove()
    foot = fig.add_subplot(gs[nrow, :])
    foot.axis("off")
    foot.legend(list(handles.values()), list(handles), loc="upper center",
                ncol=3 if ncol > 1 else 2)
    fig.suptitle("Where flow control is stable: measured region against the reconstructed "
                 "budget window and the effective-rate condition (issue 16)", fontsize=10)
    par = r["params"]
    fig.text(0.01, 0.005, f"{par['replications']} replications of {par['slots']} slots per point "
                        f"(growth over the second half; verdict at 99%, resolution delta = "
                        f"{par['resolution']:g} lambda*); saturated runs "
                        f"{par['saturated_slots']} slots. Certified: max over E[B] of "
                        "E[B] - r_bar; measured: max of mu_sat over the tested budgets.\n"
                        + style.mode_note(r), fontsize=7, color="#555555", ha="left",
             va="bottom", wrap=True)
    return style.save(fig, output, NAME)


if __name__ == "__main__":
    style.cli(main, __doc__)
