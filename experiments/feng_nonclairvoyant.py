"""Feng, Yang, Zhang, "Competitive Non-Clairvoyant KV-Cache Scheduling for LLM Inference"
(arXiv 2601.22996): competitive ratios without and with knowledge of the lengths.

Read: the abstract (arXiv listing and HTML front page); the paper's text was not
available here.  Claims: "we propose the Geometric Slicing Algorithm (GSA), the
non-clairvoyant policy to achieve the first constant competitive ratio for this problem
in the offline batch setting ... GSA achieves a competitive ratio of at most 61.92 for
general instances, improving to 32 in the large-memory regime.  ... a clairvoyant
counterpart, the Geometric Batching Algorithm (GBA), which achieves an approximation
ratio of 10.67 for general instances and 6.75 in the large-memory regime".

What can be checked: GSA and GBA themselves cannot: the abstract does not define their
phase lengths, restart rule or staggering, and a schedule that restarts running requests
on a timetable is not an admission rule of this engine.  What can: the premise that
simple non-clairvoyant rules have no constant ratio in the offline batch setting (so a
guarantee such as GSA's is needed), on the batch blocking family of
``experiments.neighbours`` (all requests in slot 0, a long one first in the queue), for
the package's non-clairvoyant policies: Greedy (vLLM's FCFS) and FlowControl (Dong &
Cao's Alg. 2); and that knowing the lengths closes the gap: a clairvoyant policy of the
package (MC-SF) stays within GBA's approximation bound on the same instances and on the
synthetic family.  Their model is this package's slot model in the batch setting.
"""

from __future__ import annotations

from experiments.common import Check, Context, fmt, write_results
from experiments.neighbours import blocking_ratios, competitive_data, ratios

NAME = "feng_nonclairvoyant"
TITLE = ("Feng, Yang, Zhang (arXiv 2601.22996): non-clairvoyant and clairvoyant competitive "
         "ratios in the offline batch setting")
FIGURE = "fig14_competitive"

GSA, GSA_LARGE = 61.92, 32.0
GBA, GBA_LARGE = 10.67, 6.75
NON_CLAIRVOYANT = ("Greedy", "FlowControl(2)")


def compute(ctx: Context) -> dict:
    data = competitive_data(ctx)
    results = dict(data, title=TITLE, bounds={"GSA": GSA, "GSA large memory": GSA_LARGE,
                                              "GBA": GBA, "GBA large memory": GBA_LARGE})
    write_results(ctx, NAME, results)
    return results


def verify(results: dict) -> list:
    rows = []
    pts = {p: blocking_ratios(results, p, online=False) for p in NON_CLAIRVOYANT}
    if all(pts.values()):
        largest = {p: v[-1] for p, v in pts.items()}
        ok = all(r > GSA for _, r in largest.values())
        rows.append(Check(
            NAME, "the non-clairvoyant problem needs a guarantee like GSA's: in the offline "
                  "batch setting FCFS rules have no constant ratio; on the batch blocking "
                  "family (large memory) they exceed GSA's bound", "paper",
            f"GSA: ratio <= {GSA:g} ({GSA_LARGE:g} with large memory); GSA itself is not "
            "encoded (its phases and restarts are not defined in the abstract)",
            "; ".join(f"{p}: " + ", ".join(f"{fmt(r, 4)} (o_L = {o})" for o, r in v)
                      for p, v in pts.items()),
            f"every non-clairvoyant policy's ratio lower bound at the largest size > {GSA:g}",
            "PASS" if ok else "FAIL"))
    exact = ratios(results["instances"], "MC-SF", "batch") + ratios(
        results["instances"], "MC-SF", "prompts")
    upper = [r for _, r in blocking_ratios(results, "MC-SF", online=False, bound="upper")]
    if exact or upper:
        worst = max(exact + upper)
        rows.append(Check(
            NAME, "knowing the lengths closes the gap: a clairvoyant rule (MC-SF, exact "
                  "lengths) stays within GBA's approximation bound in the batch setting",
            "paper", f"GBA: ratio <= {GBA:g} ({GBA_LARGE:g} with large memory)",
            f"worst {fmt(worst, 4)} ({len(exact)} instances proven optimal; blocking family "
            "ratio upper bounds " + ", ".join(fmt(r, 4) for r in upper) + ")",
            f"every ratio (exact, or MC-SF / a lower bound on the optimum) <= {GBA:g}",
            "PASS" if worst <= GBA else "FAIL"))
    return rows
