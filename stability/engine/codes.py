"""Integer codes shared by the kernels, the reference simulator and the API layer.

They sit below everything else so that neither the kernels nor the policies import each
other for a constant.  Policy codes live with their admission hooks
(:mod:`stability.engine.admission`).
"""

# request states
FREE, WAITING, ACTIVE, DONE = 0, 1, 2, 3

# why ``kernel.advance`` returned
DONE_OK = 0  # reached t_stop, or every request completed
NEED_ROOM = 1  # a buffer is too small for the next slot: grow it and resume
BURST = 2  # a slot drew more arrivals than ``scratch`` holds (probability < 1e-30)

# eviction rule (docs/model.md section 2.3)
EVICT_RESTART = 0  # an evicted request loses its generated tokens and starts again
EVICT_RECOMPUTE = 1  # it keeps them; readmitted it re-prefills l + g and goes on from g
EVICTION_RULES = {"restart": EVICT_RESTART, "recompute": EVICT_RECOMPUTE}

# where a removed request re-enters the waiting queue
REQUEUE_ARRIVAL = 0  # at its arrival position
REQUEUE_FRONT = 1  # ahead of every waiting request, oldest activation first (vLLM)
REQUEUE_RULES = {"arrival": REQUEUE_ARRIVAL, "front": REQUEUE_FRONT}

# budget laws of flow control (B_t per slot)
BUDGET_DETERMINISTIC = 0
BUDGET_POISSON = 1
BUDGET_TWO_POINT = 2
BUDGET_LAWS = {"deterministic": BUDGET_DETERMINISTIC, "poisson": BUDGET_POISSON,
               "two-point": BUDGET_TWO_POINT}

# length laws, as encoded by ``LengthLaw.encode`` for the jitted sampler
LAW_DETERMINISTIC = 0
LAW_GEOMETRIC = 1
LAW_UNIFORM = 2
LAW_TABLE = 3

# per-class accumulators of the streaming engine (columns of ``class_acc``)
C_COMPLETED, C_TOKENS, C_RESTARTED, C_LATENCY_SUM, C_TTFT_SUM, C_EVICTIONS = 0, 1, 2, 3, 4, 5
NUM_CLASS_COLUMNS = 6

NO_LIMIT = 2**62
