"""First-come-first-served admission with a memory test (docs/model.md section 4.2).

Greedy admits the head of the queue while it fits and stops at the first that does not
(no skipping): vLLM's scheduler, and with a watermark Jaillet et al.'s alpha-protection.
Conservative reserves a worst-case decode length for every active request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from stability import validation
from stability.engine import admission
from stability.engine.codes import NO_LIMIT
from stability.policies.base import Choice, Ints, OneOf, Policy, param


def fraction_of(memory: int, share: float) -> int:
    """floor((1 - share) M) with the decimal ``share`` taken exactly (0.1 is 1/10)."""
    return math.floor((1 - Fraction(repr(share))) * memory)


def _optional_int(text):
    return None if str(text).lower() in ("none", "") else int(text)


@dataclass(frozen=True)
class Greedy(Policy, kind="greedy"):
    """FCFS: admit the head while R + l_head + 1 <= (1 - watermark) M; stop at the first
    head that does not fit.  In a slot where the running requests alone overflow nothing
    is admitted.

    Parameters
    ----------
    watermark : float
        alpha in [0, 1): admission keeps alpha M free (Jaillet et al.'s alpha-protection).
    clearing : float
        beta in [0, 1): an overflow evicts LIFO until R <= (1 - beta) M (beta-clearing).
    max_num_seqs : int or None
        At most this many requests in the batch (vLLM ``max_num_seqs``).
    max_num_batched_tokens : int or None
        Tokens per iteration, decode tokens and prefill chunks together (vLLM
        ``max_num_batched_tokens`` with chunked prefill): a prompt may be split across
        iterations.  Needs ``max_num_seqs`` <= it, so every decode fits.
    """

    watermark: float = param(0.0, help="Greedy watermark alpha in [0, 1) (alpha-protection)",
                             examples=Choice((0.0, 0.1, 0.25, 0.5)))
    clearing: float = param(0.0, help="beta-clearing: on overflow evict down to (1 - beta) M",
                            examples=Choice((0.0, 0.0, 0.2, 0.5)))
    max_num_seqs: int | None = param(None, help="at most this many requests in the batch "
                                                "(vLLM max_num_seqs)", parse=_optional_int,
                                     examples=OneOf((Choice((None,)), Ints(1, 6))))
    max_num_batched_tokens: int | None = param(
        None, help="tokens per iteration incl. chunked prefill (vLLM max_num_batched_tokens)",
        parse=_optional_int, examples=OneOf((Choice((None,)), Ints(6, 20))))

    def __post_init__(self):
        object.__setattr__(self, "watermark", validation.fraction("watermark", self.watermark))
        object.__setattr__(self, "clearing", validation.fraction("clearing", self.clearing))
        seqs = validation.integer("max_num_seqs", self.max_num_seqs, 1, allow_none=True)
        tokens = validation.integer("max_num_batched_tokens", self.max_num_batched_tokens, 1,
                                    allow_none=True)
        if tokens is not None and (seqs is None or seqs > tokens):
            raise ValueError(f"max_num_batched_tokens={tokens} needs max_num_seqs <= it (got "
                             f"{seqs}), so that every decode fits in an iteration")
        object.__setattr__(self, "max_num_seqs", seqs)
        object.__setattr__(self, "max_num_batched_tokens", tokens)

    def admission_cap(self, memory: int) -> int:
        """floor((1 - watermark) M), computed exactly from the decimal watermark."""
        return fraction_of(memory, self.watermark)

    def encode(self, memory, num_classes):
        params = admission.new_params(code=admission.GREEDY, cap=self.admission_cap(memory))
        return admission.Encoded(
            params, np.zeros(0, np.int64), False, fraction_of(memory, self.clearing),
            max_active=self.max_num_seqs or NO_LIMIT,
            token_budget=self.max_num_batched_tokens or NO_LIMIT)

    def check_progress(self, requests, memory, predicted=None, block=1):
        if not len(requests):
            return
        cap = self.admission_cap(memory)
        first = requests.prompt + 1
        if self.max_num_batched_tokens is not None:  # a chunk of one token always fits
            first = np.minimum(first, 1)
        bad = np.flatnonzero(-(-first // block) * block > cap)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"horizon=None but request {i} (l={int(requests.prompt[i])}) "
                             f"never fits under the watermark cap {cap}; give a horizon")
        # beta-clearing evicts down to (1 - beta) M: a request holding more than that can
        # be evicted even when it is the oldest, and may then restart forever
        clear_to = fraction_of(memory, self.clearing)
        bad = np.flatnonzero(-(-(requests.prompt + requests.decode) // block) * block > clear_to)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"horizon=None but request {i} (l + o = "
                             f"{int(requests.prompt[i] + requests.decode[i])}) exceeds the "
                             f"clearing level {clear_to} and may restart forever; give a horizon")


@dataclass(frozen=True)
class VLLM(Greedy, kind="vllm"):
    """Greedy as vLLM v1 schedules (docs/model.md section 4.3): FCFS from the head,
    stopping at the first request that does not fit, at most ``max_num_seqs`` requests and
    ``max_num_batched_tokens`` tokens per iteration with chunked prefill; preempted
    requests keep their tokens and go back to the front of the queue, and KV comes in
    blocks of 16 tokens (the world defaults below; ``simulate`` arguments override them).
    """

    watermark: float = param(0.0, help="Greedy watermark alpha in [0, 1) (alpha-protection)",
                             examples=Choice((0.0, 0.1)))
    clearing: float = param(0.0, help="beta-clearing: on overflow evict down to (1 - beta) M",
                            examples=Choice((0.0,)))
    max_num_seqs: int | None = param(256, help="at most this many requests in the batch "
                                               "(vLLM max_num_seqs)", parse=_optional_int,
                                     examples=Ints(1, 6))
    max_num_batched_tokens: int | None = param(
        8192, help="tokens per iteration incl. chunked prefill (vLLM max_num_batched_tokens)",
        parse=_optional_int, examples=Ints(6, 20))

    world_defaults = {"eviction": "recompute", "requeue": "front", "block_size": 16}


@dataclass(frozen=True)
class PacedGreedy(Policy, kind="paced"):
    """Greedy with a cap on admissions per slot: admit the head while it fits under
    (1 - watermark) M, at most ``per_slot`` requests per slot.

    Flow control's pacing with Greedy's memory test: unlike Alg. 2 it never admits a
    request that would not fit, so it never bounces.
    """

    per_slot: int = param(help="at most this many admissions per slot (paced)", parse=int,
                          examples=Ints(0, 6))
    watermark: float = param(0.0, help="Greedy watermark alpha in [0, 1) (alpha-protection)",
                             examples=Choice((0.0, 0.1, 0.25)))

    def __post_init__(self):
        object.__setattr__(self, "per_slot", validation.integer("per_slot", self.per_slot, 0))
        object.__setattr__(self, "watermark", validation.fraction("watermark", self.watermark))

    def encode(self, memory, num_classes):
        params = admission.new_params(code=admission.PACED, per_slot=self.per_slot,
                                      cap=fraction_of(memory, self.watermark))
        return admission.Encoded(params, np.zeros(0, np.int64), False, memory)

    def check_progress(self, requests, memory, predicted=None, block=1):
        if len(requests) and self.per_slot == 0:
            raise ValueError("horizon=None needs a policy that admits: PacedGreedy per_slot=0 "
                             "never does; give a horizon")
        Greedy(self.watermark).check_progress(requests, memory, predicted, block)


@dataclass(frozen=True)
class Conservative(Policy, kind="conservative"):
    """Worst-case reservation (A_max with a fixed bound, TensorRT-LLM GUARANTEED_NO_EVICT):
    admit the head while sum over S and it of (l + max_decode) <= M.

    Never evicts when every decode length is <= max_decode.
    """

    max_decode: int = param(help="Conservative: decode tokens reserved per request",
                            parse=int, examples=Ints(1, 15))

    def __post_init__(self):
        object.__setattr__(self, "max_decode", validation.integer("max_decode",
                                                                  self.max_decode, 1))

    def encode(self, memory, num_classes):
        params = admission.new_params(code=admission.CONSERVATIVE, max_decode=self.max_decode)
        return admission.Encoded(params, np.zeros(0, np.int64), False, memory)

    def check_progress(self, requests, memory, predicted=None, block=1):
        bad = np.flatnonzero(requests.prompt + self.max_decode > memory)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"horizon=None but request {i} (l={int(requests.prompt[i])}) never "
                             f"fits with max_decode={self.max_decode} in M={memory}; give a "
                             "horizon")
