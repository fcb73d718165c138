"""Jitted kernels of the theory package: prompt MGF tables and the FFT age product.

Plain arrays in, arrays filled in place; no Python objects (STYLE: kernel layer).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def age_product(roots, shifts, residues, w_idle, w_active, prompt_pgf, g_keep, g_extra,
                two_point, out_main, out_extra):
    """Multiply out_main[k] by prod_a P_a(z_k) and, for two-point budgets, out_extra[k] by
    prod_a (g_keep[a] + g_extra[a] P_a(z_k)), for k = 0..K-1 (K = out_main.size).

    P_a(z) = w_idle[a] + z^{shifts[a]} sum_c w_active[c, a] prompt_pgf[c, residues[a], k]
    is the tilted, normalised generating function of one activation of age a at the root
    z_k = roots[k] = exp(-2 pi i k / N); z_k^s is read from the root table at index
    (s k) mod N, so no phase error accumulates over ages.
    """
    n_roots = roots.size
    n_classes = w_active.shape[0]
    for a in range(shifts.size):
        step = shifts[a] % n_roots
        r = residues[a]
        w0 = w_idle[a]
        idx = 0
        for k in range(out_main.size):
            acc = 0j
            for c in range(n_classes):
                acc += w_active[c, a] * prompt_pgf[c, r, k]
            val = w0 + roots[idx] * acc
            out_main[k] *= val
            if two_point:
                out_extra[k] *= g_keep[a] + g_extra[a] * val
            idx += step
            if idx >= n_roots:
                idx -= n_roots


@njit(cache=True, nogil=True)
def log_mgf_table(eta, values, log_probs):
    """(log E[e^{eta V}], E[V e^{eta V}] / E[e^{eta V}]) for a finite table of V.

    Terms below e^-700 relative to the largest are dropped (weight < 1e-304): their exp
    would be subnormal, which is slow, and cannot change a double-precision sum.
    """
    top = -np.inf
    for i in range(values.size):
        x = eta * values[i] + log_probs[i]
        if x > top:
            top = x
    total = 0.0
    first = 0.0
    for i in range(values.size):
        x = eta * values[i] + log_probs[i] - top
        if x > -700.0:
            e = np.exp(x)
            total += e
            first += e * values[i]
    return top + np.log(total), first / total
