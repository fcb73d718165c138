"""Smallest-Volume-First (Kong, Qi, Ye, Zhou, arXiv 2606.22327).

SVF orders the waiting requests by their KV-cache *volume*, the memory-time a request
holds over its life, w(l, o) = l o + o (o + 1) / 2 tokens x slots (the area of its
"2D spatio-temporal" footprint), instead of by decode length alone as shortest-first
rules do.  With a common prompt length the two orders agree; they differ when prompts
differ.

Encoded here as the memory-checked family of :mod:`stability.policies.predicted` (MC-SF's
projected-memory check over predicted completions, LIFO eviction when a prediction is
wrong) with the volume order: only the published abstract was available, so the exact
admission test of the paper is not reproduced beyond "smallest volume first, subject to
memory".
"""

from __future__ import annotations

from dataclasses import dataclass

from stability.engine import admission
from stability.policies.predicted import _POINT, _MemoryChecked, _predictions_param
from stability.predictions import Predictions


@dataclass(frozen=True)
class SVF(_MemoryChecked, kind="svf"):
    """Smallest-Volume-First: admit the waiting request of smallest predicted volume
    w(l, e) = l e + e (e + 1) / 2 first (e: the predicted length), while the projected
    memory stays within M at every predicted completion (MC-SF's check)."""

    predictions: Predictions = _predictions_param(Predictions(), _POINT)
    order = admission.ORDER_VOLUME
