"""The hindsight optimum: minimum total latency when every length is known in advance.

Model (docs/model.md 1, slot model, all lengths known in hindsight).  Request i has arrival slot
a_i, prompt l_i and decode o_i.  A *schedule* gives every request one start slot s_i >= a_i;
the request decodes in slots s_i, ..., s_i + o_i - 1, completes in slot C_i = s_i + o_i - 1,
and in slot t of that range holds

    m_i(t) = l_i + (t - s_i) + 1                                             (H1)

tokens of KV cache.  The schedule is *feasible* when sum_i m_i(t) <= M in every slot t, and
its cost is the total latency

    sum_i latency_i,   latency_i = C_i - a_i + 1 = s_i + o_i - a_i.          (H2)

Modelling choice: one start per request, no eviction.  A hindsight schedule never benefits
from eviction: given any run with evictions, keep only the final (completing) run of each
request.  Every slot's memory can only go down (the dropped partial runs held tokens, the
kept runs are unchanged) and every completion slot is unchanged, so the latencies are equal.
Hence restricting to one contiguous run per request loses nothing.  This is the integer
program of Jaillet et al., "Online Scheduling for LLM Inference with KV Cache Constraints"
(arXiv 2502.07115), whose hindsight-optimal benchmark chooses one start time per request
subject to one memory constraint per time step; here it is written in docs/model.md 1's slot
model (a request holds l + g + 1 tokens while decoding its (g+1)-th token, and its memory
is free in the slot after its completion slot).

The integer program (``hindsight_optimum``), binaries x[i, s] = 1 iff s_i = s:

    minimise   sum_i sum_s (s + o_i - a_i) x[i, s]                          (IP-obj)
    subject to sum_s x[i, s] = 1                          for every i       (IP-one)
               sum_i sum_{s <= t <= s + o_i - 1} (l_i + t - s + 1) x[i, s] <= M
                                                          for every slot t  (IP-mem)
               x[i, s] in {0, 1},  s in [a_i, last_i]

with two families of valid rows added by default: (IP-clique) for every slot t,
sum of x[i, s] over the (i, s) whose m_i(t) > M/2 is <= 1 (two such requests would exceed M);
(IP-sym) s_i <= s_j for identical requests i < j (same a, l, o: swapping them changes
neither feasibility nor cost).  Neither removes every optimal schedule.

Lemma H (safe horizon).  Every optimal schedule completes by slot max_i a_i + sum_i o_i - 1,
so ``safe_horizon`` H = max a + sum o slots (0..H-1) lose no optimum.  Proof: let T be the
last completion slot of an optimal schedule.  If some slot u in [max a, T] had no active
request, every request starting after u could start one slot earlier: its start stays
>= max a >= its arrival, the requests starting at or before u have all completed before u
(none is active in u), so the shifted requests only meet each other and the memory of every
slot t >= u becomes the old memory of slot t + 1 <= M; the total latency drops, a
contradiction.  So each slot of [max a, T] is covered by the decode interval of some
request; these intervals cover at most sum o slots, hence T - max a + 1 <= sum o.  QED

Lemma W (windows from an upper bound).  If some feasible schedule costs U, every schedule of
cost <= U (in particular every optimal one) has, for every j,

    latency_j <= U - LB(-j),  i.e.  s_j <= a_j + U - LB(-j) - o_j,          (H3)

where LB(-j) is any lower bound on the optimum of the instance without j: deleting j from
a feasible schedule leaves a feasible schedule of the others (memory only decreases), whose
cost is >= OPT(-j) >= LB(-j).  The MILP uses U from ``upper_bound_schedule`` and
LB(-j) = ``memory_volume_lower_bound`` of the others, intersected with Lemma H.

Cheap lower bounds: ``decode_lower_bound`` (latency_i >= o_i) and
``memory_volume_lower_bound`` (Claim V below), plus the LP relaxation
(``lp_lower_bound``).  ``brute_force_optimum`` enumerates start vectors for tiny instances
to verify the MILP; ``heuristic_schedule`` / ``upper_bound_schedule`` give feasible
schedules (upper bounds).

Limits (measured with ``python -m benchmarks.hindsight`` on 2 shared cores, HiGHS through
SciPy 1.17, 60 s per instance): on Jaillet et al.'s synthetic family (``synthetic_batch``:
all requests in slot 0, M ~ U{30..50}, decode up to M - prompt) the program is proven
optimal in 3-25 s for 8 requests and within 60 s for most 10-12 request instances; from
about 15 requests on HiGHS stops at the time limit (gap 8-10% at 15, 15-19% at 20, 19-31%
at 30-40 requests, where it does not finish the root node and the heuristic is the best
schedule).  The LP relaxation is 10-30% below the optimum on this family, which is what
limits the branch and bound.  Instances whose arrivals are spread out have much shorter
start windows and solve faster.  HiGHS may print "HighsMipSolverData::..." lines on stdout.
"""

from stability.hindsight.bounds import decode_lower_bound, memory_volume_lower_bound, safe_horizon
from stability.hindsight.milp import HindsightResult, LPBound, hindsight_optimum, lp_lower_bound
from stability.hindsight.schedules import (
    HEURISTIC_ORDERS,
    Schedule,
    brute_force_optimum,
    evaluate_schedule,
    heuristic_schedule,
    synthetic_batch,
    upper_bound_schedule,
)

__all__ = [
    "Schedule", "HindsightResult", "LPBound", "hindsight_optimum", "lp_lower_bound",
    "brute_force_optimum", "heuristic_schedule", "upper_bound_schedule", "evaluate_schedule",
    "decode_lower_bound", "memory_volume_lower_bound", "safe_horizon", "synthetic_batch",
    "HEURISTIC_ORDERS",
]
