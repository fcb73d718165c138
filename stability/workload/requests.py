"""Requests: the arrays a batch run simulates (docs/model.md section 1)."""

from __future__ import annotations

import numpy as np

__all__ = ["Requests"]


def _as_int_array(name: str, values) -> np.ndarray:
    """A one-dimensional int64 copy of ``values``; floats must be whole numbers."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{name}[{i}] = {float(arr[i])!r} is not allowed; {name} must hold integers")
    return arr.astype(np.int64)


class Requests:
    """A batch of requests, aligned by index (docs/model.md section 1).

    Parameters
    ----------
    arrival : array of int
        a_i, arrival slot (>= 0).
    prompt : array of int
        l_i, prompt tokens (>= 1).
    decode : array of int
        o_i, decode tokens (>= 1).
    class_id : array of int, optional
        k_i (>= 0); all zero when omitted.
    arrival_time : array of float, optional
        Arrival times in seconds (>= 0), for runs under a timed clock
        (``stability.clock``); traces and ``Workload.generate_timed`` give them.

    The arrays are copied (integers to int64) and exposed read-only.
    """

    __slots__ = ("_arrays",)

    def __init__(self, arrival, prompt, decode, class_id=None, arrival_time=None):
        arrays = {
            "arrival": _as_int_array("arrival", arrival),
            "prompt": _as_int_array("prompt", prompt),
            "decode": _as_int_array("decode", decode),
        }
        n = arrays["arrival"].size
        arrays["class_id"] = (np.zeros(n, dtype=np.int64) if class_id is None
                              else _as_int_array("class_id", class_id))
        for name, arr in arrays.items():
            if arr.size != n:
                raise ValueError(
                    f"{name} has length {arr.size}, but arrival has length {n}; "
                    "all request arrays must have equal lengths"
                )
        for name, low in (("arrival", 0), ("prompt", 1), ("decode", 1), ("class_id", 0)):
            arr = arrays[name]
            bad = np.flatnonzero(arr < low)
            if bad.size:
                i = int(bad[0])
                raise ValueError(
                    f"{name}[{i}] = {int(arr[i])} is not allowed; {name} must be >= {low}"
                )
        if arrival_time is not None:
            times = np.array(arrival_time, dtype=float)
            if times.ndim != 1 or times.size != n:
                raise ValueError(f"arrival_time must be a one-dimensional array of length {n}, "
                                 f"got shape {times.shape}")
            bad = np.flatnonzero(~np.isfinite(times) | (times < 0))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"arrival_time[{i}] = {float(times[i])!r} is not allowed; "
                                 "arrival times must be finite numbers of seconds >= 0")
            arrays["arrival_time"] = times
        self._arrays = arrays

    @classmethod
    def _trusted(cls, arrival, prompt, decode, class_id, arrival_time=None) -> "Requests":
        """Adopt arrays known to be valid (fresh generator output) without copying."""
        obj = object.__new__(cls)
        obj._arrays = {"arrival": arrival, "prompt": prompt, "decode": decode,
                       "class_id": class_id}
        if arrival_time is not None:
            obj._arrays["arrival_time"] = arrival_time
        return obj

    def _view(self, name):
        if name not in self._arrays:
            return None
        view = self._arrays[name].view()
        view.setflags(write=False)
        return view

    arrival = property(lambda self: self._view("arrival"), doc="a_i, arrival slots")
    prompt = property(lambda self: self._view("prompt"), doc="l_i, prompt tokens")
    decode = property(lambda self: self._view("decode"), doc="o_i, decode tokens")
    class_id = property(lambda self: self._view("class_id"), doc="k_i, classes")
    arrival_time = property(lambda self: self._view("arrival_time"),
                            doc="arrival times in seconds, or None")

    def __len__(self) -> int:
        return int(self._arrays["arrival"].size)

    def __repr__(self) -> str:
        return f"Requests(n={len(self)}, classes={self.num_classes})"

    @property
    def num_classes(self) -> int:
        return int(self._arrays["class_id"].max()) + 1 if len(self) else 1

    def check_fits(self, memory: int, block: int = 1) -> None:
        """Raise if some request could never complete: it needs l + o tokens, in whole
        blocks of ``block`` tokens, and M holds fewer (docs/model.md 1)."""
        prompt, decode = self._arrays["prompt"], self._arrays["decode"]
        need = -(-(prompt + decode) // block) * block
        bad = np.flatnonzero(need > memory)
        if bad.size:
            i = int(bad[0])
            blocks = f" in blocks of {block} tokens ({int(need[i])})" if block > 1 else ""
            raise ValueError(
                f"request {i} has prompt l={int(prompt[i])} and decode o={int(decode[i])}, so "
                f"l + o = {int(prompt[i] + decode[i])}{blocks} exceeds the KV capacity "
                f"M={memory}; it could never complete")

    def arrival_ticks(self, tick: float) -> np.ndarray:
        """Arrival times rounded to a timed clock's ticks of ``tick`` seconds (the engines'
        integer time; needs ``arrival_time``)."""
        return np.rint(self._arrays["arrival_time"] / tick).astype(np.int64)

    def memory_time(self) -> np.ndarray:
        """w(l, o) = l*o + o(o+1)/2 per request (memory-time, docs/model.md 1)."""
        prompt, decode = self._arrays["prompt"], self._arrays["decode"]
        return prompt * decode + decode * (decode + 1) // 2
