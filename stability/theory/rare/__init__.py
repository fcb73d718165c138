"""Rare events: the per-slot overflow probability P(U > M) down to 1e-12 and below.

Beyond the paper (docs/model.md section 3.4, "rare-event estimates far below what plain Monte Carlo
sees").  U is the saturated, eviction-free KV demand of docs/model.md 3.2 (*reconstruction* of
the paper's Alg. 2 analysis): a request activated a slots ago holds
X(a) = (l + a + 1) 1{o > a} tokens, and with B_{t-a} activations in slot t - a,

    U = sum_{a >= 0} sum_{i=1..B_{t-a}} X_i(a),    E[U] = E[B] E[w].

P(U > M) is the overflow probability of one slot of that relaxation.  With deterministic
budgets no smaller than the actual activations it bounds the real system's overflow
frequency until the first overflow (the saturated process dominates it); otherwise, and
with ``budget="unthrottled"`` (Poisson(lambda_k) activations: the compound-Poisson,
M/G/infinity demand), it is a prediction of that frequency.  See
:mod:`stability.theory.overflow` for the bound exp(-I(M)) and
:mod:`stability.theory.exact_tail` for the exact FFT tail of the same quantity.

Estimator.  Importance sampling with exponential tilting at the Chernoff optimiser
theta* (Lambda'(theta*) = M, so the tilted mean of U is M).  Under the tilted law the
ages stay independent and, with phi_a = E[e^{theta X(a)}] and G the budget's generating
function,

* Poisson(beta) budgets: the count of age a is Poisson(beta phi_a);
* deterministic b: b activations per age;
* two-point floor/ceil: P_theta(B = k) proportional to P(B = k) phi_a^k;

and each activation is drawn from the tilted law of X(a), P_theta(X = x) proportional to
e^{theta x} P(X(a) = x): active with probability m_a / phi_a, m_a = E[e^{theta X} 1{o > a}],
of class c with probability proportional to w_c P(o_c > a) e^{theta(a+1)} E[e^{theta l_c}],
with its prompt drawn from the tilted prompt law.  The likelihood ratio is
dP/dP_theta = exp(-theta U + Lambda(theta)), Lambda(theta) = sum_a log G(phi_a(theta)), so

    P(U > M) = e^{Lambda(theta) - theta M} E_theta[1{U > M} e^{-theta (U - M)}],

estimated by the sample mean over N tilted draws (weights in [0, 1], no overflow), with
its standard error and a normal (CLT) interval at level 1 - alpha.  The tables (prompt
pmf, P(o > a) per age, budget law, class mix) are those of
:class:`stability.theory.DemandModel`.

Unbounded (geometric) decode lengths.  Ages are tabulated up to A, chosen so that the
tilted expected number of active activations older than A is tau <= 1e-12
(:data:`TRUNCATION`).  The sampler then draws U_A (ages < A) *exactly* with the exact
Lambda_A, so the estimate is unbiased for P(U_A > M), and

    0 <= P(U > M) - P(U_A > M) <= e^{Lambda(theta) - theta M} tau,

(P(U > M, U_A <= M) <= P(U > M, some older activation active), bounded under the full
tilted law by Markov's inequality), with Lambda <= Lambda_A + tau (log G(phi) <=
E[B] (phi - 1) and phi_a - 1 <= m_a).  That bound is
reported as ``truncation_bound`` and added to ``ci_high``; relative to the estimate it is
~tau / E_theta[weight], below 1e-9 in practice.

Plain Monte Carlo (:func:`overflow_probability_mc`) samples U directly with the
simulator's own generator (:func:`stability.engine.generate.fill_requests`), an independent
code path used for validation, with an exact (Clopper-Pearson) binomial interval.

Modules: ``sampler`` (tilted tables and samplers), ``estimators`` (estimates and tables),
``cases`` (the paper's validation tables), ``kernels`` (jitted samplers); the command
line is ``stability rare``.
"""

from stability.theory.rare.cases import paper_tables
from stability.theory.rare.estimators import (
    Estimate,
    OverflowRow,
    OverflowTable,
    overflow_probability_is,
    overflow_probability_mc,
    overflow_table,
)
from stability.theory.rare.sampler import MC_METHODS, TRUNCATION, TiltedSampler

__all__ = ["Estimate", "OverflowRow", "OverflowTable", "TiltedSampler",
           "overflow_probability_is", "overflow_probability_mc", "overflow_table",
           "paper_tables", "MC_METHODS", "TRUNCATION"]
