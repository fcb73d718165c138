"""Trace loaders: the Azure LLM inference traces and lengths-only files.

Three CSV formats are recognised by their header:

- processed: ``arrived_at`` (seconds), ``num_prefill_tokens``, ``num_decode_tokens``;
- Azure original: ``TIMESTAMP`` (date and time), ``ContextTokens``, ``GeneratedTokens``;
- lengths only: ``num_prefill_tokens``, ``num_decode_tokens`` (arrivals are then drawn as
  a Poisson stream at a given rate per slot).

Seconds map to slots as slot = floor(seconds * time_scale / slot_seconds), measured from
the first arrival: ``slot_seconds`` is the duration of one decode iteration and
``time_scale`` stretches (> 1) or compresses (< 1) the trace, so the offered load is
multiplied by 1 / time_scale.  The requests also keep their (scaled) arrival times in
seconds, for runs under a timed clock (``stability.clock``).
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np

from stability import validation

from stability.workload.laws import Empirical, LogNormal
from stability.workload.poisson import RequestClass, Workload
from stability.workload.requests import Requests

__all__ = ["load_trace", "trace_lengths", "trace_workload", "azure_trace_path",
           "azure_workload", "DEFAULT_SLOT_SECONDS"]

DEFAULT_SLOT_SECONDS = 0.05  # 50 ms per decode iteration
_FORMATS = {
    "processed": ("arrived_at", "num_prefill_tokens", "num_decode_tokens"),
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "lengths": (None, "num_prefill_tokens", "num_decode_tokens"),
}
# Public summary statistics of the two Azure traces, for the synthetic fallback.
_AZURE_SUMMARY = {
    "conv": dict(prompt_mean=1155, prompt_median=1020, decode_mean=211, decode_median=129,
                 decode_max=1000, prompt_max=14050),
    "code": dict(prompt_mean=2048, prompt_median=1469, decode_mean=28, decode_median=13,
                 decode_max=1899, prompt_max=7437),
}


def _open_checked(path) -> Path:
    """``path`` as a Path to an existing regular file, or a ValueError naming it."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"trace file {str(path)!r} is a directory, not a CSV file")
    if not path.exists():
        raise ValueError(f"trace file {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"trace file {str(path)!r} is not a regular file")
    return path


def _header(path: Path) -> tuple[str, list]:
    """(format, header cells) from the first line."""
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), None)
    if header is None:
        raise ValueError(f"{path}: line 1: the file is empty; expected a CSV header")
    header = [h.strip() for h in header]
    for name, (time_col, l_col, o_col) in _FORMATS.items():
        if l_col in header and o_col in header and (time_col is None or time_col in header):
            return name, header
    raise ValueError(
        f"{path}: line 1: unrecognised header {header}; expected columns "
        "arrived_at,num_prefill_tokens,num_decode_tokens (processed), "
        "TIMESTAMP,ContextTokens,GeneratedTokens (Azure) or "
        "num_prefill_tokens,num_decode_tokens (lengths only)")


def _read(path) -> tuple[str, np.ndarray, np.ndarray, np.ndarray | None]:
    """(format, prompt, decode, seconds or None) of a trace file.

    The file is parsed by numpy's CSV reader (``numpy.loadtxt``, in C).  Anything it does
    not accept, and any value out of range, sends the file through :func:`_read_rows`,
    which names the first bad cell by file, line and column.
    """
    path = _open_checked(path)
    try:
        fmt, header = _header(path)
        time_col, l_col, o_col = _FORMATS[fmt]
        fields = [(l_col, np.int64), (o_col, np.int64)]
        if time_col is not None:
            fields.append((time_col, np.float64 if fmt == "processed" else "U40"))
        cols = [header.index(name) for name, _ in fields]
        order = np.argsort(cols)  # loadtxt returns the used columns in file order
        dtype = np.dtype([(f"c{i}", fields[j][1]) for i, j in enumerate(order)])
        try:
            with warnings.catch_warnings():  # an empty body is reported below
                warnings.simplefilter("ignore", UserWarning)
                table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=sorted(cols),
                                   dtype=dtype, comments=None, quotechar='"', ndmin=1,
                                   encoding="utf-8")
            column = {fields[j][0]: table[f"c{i}"] for i, j in enumerate(order)}
            prompt, decode = column[l_col], column[o_col]
            seconds = None
            if time_col is not None:
                seconds = column[time_col]
                if fmt == "azure":
                    stamps = np.char.rstrip(np.char.strip(seconds), "Z").astype("datetime64[ns]")
                    seconds = (stamps - stamps.min()).astype(np.int64) / 1e9 if stamps.size \
                        else np.zeros(0)
            ok = (prompt.size > 0 and (prompt >= 1).all() and (decode >= 1).all()
                  and (seconds is None or (np.isfinite(seconds).all() and (seconds >= 0).all())))
        except ValueError:
            ok = False
        if not ok:  # find and name the first bad cell
            return _read_rows(path, fmt, header)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text CSV file (it holds bytes that are not UTF-8 "
                         "text)") from None
    return fmt, prompt.astype(np.int64), decode.astype(np.int64), \
        None if seconds is None else np.asarray(seconds, dtype=float)


def _read_rows(path: Path, fmt: str, header: list):
    """The slow reader: row by row, with errors naming the file, line and column."""
    time_col, l_col, o_col = _FORMATS[fmt]
    cols = {c: header.index(c) for c in (time_col, l_col, o_col) if c is not None}
    prompt, decode, seconds = [], [], []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for line, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) < len(header):
                raise ValueError(f"{path}: line {line}: expected {len(header)} columns, "
                                 f"got {len(row)}")
            for col, sink in ((l_col, prompt), (o_col, decode)):
                cell = row[cols[col]].strip()
                try:
                    value = int(cell)
                except ValueError:
                    raise ValueError(f"{path}: line {line}: column {col}: {cell!r} is not an "
                                     "integer") from None
                if value < 1:
                    raise ValueError(f"{path}: line {line}: column {col}: {value} must be >= 1")
                sink.append(value)
            if time_col is not None:
                cell = row[cols[time_col]].strip()
                seconds.append(_parse_time(path, line, time_col, cell, fmt))
    if not prompt:
        raise ValueError(f"{path}: the file holds a header but no requests")
    times = np.array(seconds, dtype=float) if time_col is not None else None
    return fmt, np.array(prompt, np.int64), np.array(decode, np.int64), times


def _parse_time(path, line, column, cell, fmt) -> float:
    if fmt == "processed":
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{path}: line {line}: column {column}: {cell!r} is not a "
                             "number of seconds >= 0")
        return value
    text = cell.rstrip("Z")
    if "." in text:  # Azure writes 7 fractional digits; Python parses at most 6
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"{path}: line {line}: column {column}: {cell!r} is not a date and "
                         "time like 2023-11-16 18:15:46.6805900") from None


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def load_trace(path, slot_seconds: float = DEFAULT_SLOT_SECONDS, time_scale: float = 1.0,
               rate: float | None = None, seed: int = 0) -> Requests:
    """Requests of a trace file, arrivals in slots (see the module docstring).

    A lengths-only file needs ``rate`` (Poisson arrivals per slot, drawn with ``seed``);
    for timed files ``rate`` must be None.
    """
    slot_seconds = _positive("slot_seconds", slot_seconds)
    time_scale = _positive("time_scale", time_scale)
    fmt, prompt, decode, seconds = _read(path)
    if seconds is None:
        if rate is None:
            raise ValueError(f"{path} holds lengths only; give rate (Poisson arrivals per slot)")
        rate = _positive("rate", rate)
        gaps = np.random.default_rng(np.random.SeedSequence(seed)).exponential(1 / rate,
                                                                            prompt.size)
        offsets = np.cumsum(gaps) - gaps[0]  # in slots
    else:
        if rate is not None:
            raise ValueError(f"{path} has arrival times; rate must be None (use time_scale "
                             "to change the load)")
        offsets = (seconds - seconds.min()) * time_scale / slot_seconds
    arrival = np.floor(offsets).astype(np.int64)
    return Requests(arrival, prompt, decode, arrival_time=offsets * slot_seconds)


def trace_lengths(path) -> tuple[np.ndarray, np.ndarray]:
    """(prompt, decode) lengths of a trace file of any of the three formats."""
    _, prompt, decode, _ = _read(path)
    return prompt, decode


JOINT_BINS = 32
"""Decode-length bins that keep a trace's (prompt, decode) dependence when resampling."""


def trace_workload(path, rate: float | None = None, slot_seconds: float = DEFAULT_SLOT_SECONDS,
                   time_scale: float = 1.0, joint_bins: int = JOINT_BINS) -> Workload:
    """The trace's lengths resampled as Poisson classes: the requests are split into
    ``joint_bins`` bins of equal count by decode length, and each bin is a class whose
    prompt and decode laws are that bin's empirical laws, at a rate proportional to its
    count.  So a resampled request keeps the trace's dependence of prompt on decode length
    up to the bin (the Azure conversation trace: E[w] = 259,153 tokens x slots jointly,
    279,442 if prompt and decode were independent, 259,005 with 32 bins);
    ``joint_bins=1`` resamples them independently.

    The total rate is ``rate`` if given, else the trace's own mean rate in requests per
    slot (after time scaling).
    """
    _, prompt, decode, seconds = _read(path)
    if rate is None:
        if seconds is None or seconds.max() <= seconds.min():
            raise ValueError(f"{path}: give rate; the file has no arrival times to measure it")
        span = (seconds.max() - seconds.min()) * _positive("time_scale", time_scale)
        rate = prompt.size / (span / _positive("slot_seconds", slot_seconds))
    rate = _positive("rate", rate)
    name = Path(path).stem
    bins = min(validation.integer("joint_bins", joint_bins, 1), prompt.size)
    order = np.argsort(decode, kind="stable")
    classes = []
    for part in np.array_split(order, bins):
        o = decode[part]
        label = name if bins == 1 else f"{name}, o in [{int(o.min())}, {int(o.max())}]"
        classes.append(RequestClass(rate * part.size / prompt.size, Empirical(prompt[part]),
                                    Empirical(o), name=label))
    return Workload(tuple(classes))


def azure_trace_path(name: str) -> Path | None:
    """The shared Azure trace ``azure_{name}_2023.csv`` if present, else None.

    ``$STABILITY_TRACES``, when set, is the directory that must hold it (a directory that
    does not exist, or lacks the file, is an error rather than a silent fallback);
    otherwise ``../shared/traces`` beside the repository is tried.
    """
    if name not in _AZURE_SUMMARY:
        raise ValueError(f"trace name must be one of {sorted(_AZURE_SUMMARY)}, got {name!r}")
    file = f"azure_{name}_2023.csv"
    chosen = os.environ.get("STABILITY_TRACES")
    if chosen:
        root = Path(chosen)
        if not root.is_dir():
            raise ValueError(f"STABILITY_TRACES={chosen}: no such directory (it should hold "
                             f"{file}; unset it to use ../shared/traces or the synthetic "
                             "stand-ins)")
        if not (root / file).is_file():
            raise ValueError(f"STABILITY_TRACES={chosen}: {file} is not there (unset it to "
                             "use ../shared/traces or the synthetic stand-ins)")
        return root / file
    candidate = Path(__file__).resolve().parents[3] / "shared" / "traces" / file
    return candidate if candidate.is_file() else None


def azure_workload(name: str, rate: float, synthetic: bool | None = None) -> Workload:
    """The Azure ``conv`` or ``code`` lengths at ``rate`` requests per slot.

    Reads the shared trace when present; otherwise (or with ``synthetic=True``) uses
    discretised lognormal laws matching the published means and medians (conv: prompt
    mean 1155, median 1020; decode mean 211, median 129, max 1000; code: prompt mean 2048,
    median 1469; decode mean 28, median 13).
    """
    path = None if synthetic else azure_trace_path(name)
    if path is not None:
        return trace_workload(path, rate=rate)
    if synthetic is None:
        warnings.warn(f"the Azure {name} trace is not in ../shared/traces (set "
                      "STABILITY_TRACES to its directory); using its synthetic stand-in with "
                      "the published statistics", stacklevel=2)
    s = _AZURE_SUMMARY[name]
    prompt = LogNormal.matching(s["prompt_mean"], s["prompt_median"], s["prompt_max"])
    decode = LogNormal.matching(s["decode_mean"], s["decode_median"], s["decode_max"])
    return Workload((RequestClass(_positive("rate", rate), prompt, decode,
                                  name=f"azure-{name}-synthetic"),))
