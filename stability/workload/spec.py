"""Workload specs: a workload as plain data, shared by the command line and sweeps.

A :class:`WorkloadSpec` names a workload kind with a rate or a load and, for synthetic
workloads, its length laws in the ``det:10`` syntax; :meth:`WorkloadSpec.build` makes the
:class:`~stability.workload.Workload` for a KV capacity.  Azure workloads record which
source they used (the trace file, by its SHA-256, or the synthetic stand-in).
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, fields

from stability import validation
from stability.workload.laws import parse_law
from stability.workload import traces
from stability.workload.poisson import Workload

__all__ = ["WorkloadSpec", "KINDS", "sha256_file"]

KINDS = ("paper-4.1", "synthetic", "azure-conv", "azure-code")


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WorkloadSpec:
    """A serialisable workload: ``kind`` and exactly one of ``rate`` or ``load``.

    kind : "paper-4.1" (Sec. 4.1's three classes; ``rate`` is per class; optional ``jitter``
        j spreads each decode length over o +- j, and ``prompt`` replaces l = 10),
        "synthetic" (one class with ``prompt`` and ``decode`` laws in the CLI syntax, e.g.
        "det:10", "geom-mean:40"), "azure-conv" or "azure-code" (the Azure trace lengths,
        resampled jointly up to decode-length bins).
    rate : Poisson arrivals per slot (lambda).
    load : instead of rate, a fraction of the critical load: lambda = load * M / E[w]
        (Prop. 3.2), so the workload depends on the memory it runs with.
    source : azure only; "trace" (the shared trace file, whose SHA-256 is recorded in
        ``trace_sha256``), "synthetic" (the lognormal stand-in) or "auto" (the trace if
        present), resolved when the spec is made so the key says which was used.
    """

    kind: str
    rate: float | None = None
    load: float | None = None
    prompt: str | None = None
    decode: str | None = None
    source: str | None = None
    trace_sha256: str | None = None
    jitter: int | None = None

    def __post_init__(self):
        set_ = functools.partial(object.__setattr__, self)
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ValueError(f"kind: unknown workload {self.kind!r}; expected "
                             f"{', '.join(KINDS)}")
        if (self.rate is None) == (self.load is None):
            raise ValueError("rate: give exactly one of rate (arrivals per slot) or load "
                             "(fraction of M / E[w])")
        if self.rate is not None:
            set_("rate", validation.number("rate", self.rate, 0.0))
        else:
            set_("load", validation.number("load", self.load, 0.0, strict_low=True))
        laws = {"synthetic": ("prompt", "decode"), "paper-4.1": ("prompt",)}.get(self.kind, ())
        for name in ("prompt", "decode"):
            text = getattr(self, name)
            if name not in laws:
                if text is not None:
                    raise ValueError(f"{name}: a {self.kind} workload takes no {name} law")
                continue
            if text is None and self.kind == "synthetic":
                text = "det:10" if name == "prompt" else "geom-mean:40"
            if text is not None:
                try:
                    parse_law(text)
                except ValueError as err:
                    raise ValueError(f"{name}: {err}") from None
                set_(name, text)
        if self.jitter is not None:
            if self.kind != "paper-4.1":
                raise ValueError("jitter: only the paper-4.1 workload takes a jitter")
            set_("jitter", validation.integer("jitter", self.jitter, 0, 19))
        if self.kind.startswith("azure-"):
            self._resolve_source()
        elif self.source is not None or self.trace_sha256 is not None:
            raise ValueError("source: only azure workloads take a source")

    def _resolve_source(self) -> None:

        try:
            source = validation.choice("source", self.source or "auto",
                                       ("auto", "trace", "synthetic"))
        except ValueError as err:
            raise ValueError(f"source: {err}") from None
        name = self.kind.split("-", 1)[1]
        if source == "synthetic":
            if self.trace_sha256 is not None:
                raise ValueError("trace_sha256: only a trace source has a trace hash")
            object.__setattr__(self, "source", "synthetic")
            return
        path = traces.azure_trace_path(name)
        if path is None:
            if source == "trace" or self.trace_sha256 is not None:
                raise ValueError(f"source: the Azure {name} trace (azure_{name}_2023.csv) is "
                                 "not found; set STABILITY_TRACES or use source = 'synthetic'")
            warnings.warn(f"Azure {name} trace not found; the sweep uses its synthetic "
                          "stand-in", stacklevel=3)
            object.__setattr__(self, "source", "synthetic")
            return
        digest = sha256_file(path)
        if self.trace_sha256 is not None and self.trace_sha256 != digest:
            raise ValueError(f"trace_sha256: {path} has SHA-256 {digest}, not the recorded "
                             f"{self.trace_sha256}; the trace changed")
        object.__setattr__(self, "source", "trace")
        object.__setattr__(self, "trace_sha256", digest)

    @classmethod
    def from_dict(cls, table: dict, path: str = "workload") -> "WorkloadSpec":
        """Validate a config table; errors name the key, e.g. ``workload[1].rate: ...``."""
        if not isinstance(table, dict):
            raise ValueError(f"{path}: must be a table, got {table!r}")
        for key in table:
            if key not in FIELDS:
                raise ValueError(f"{path}.{key}: unknown key; expected one of {', '.join(FIELDS)}")
        if "kind" not in table:
            raise ValueError(f"{path}.kind: missing")
        try:
            return cls(**table)
        except ValueError as err:
            raise ValueError(f"{path}.{err}") from None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def canonical(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def build(self, memory: int):
        """The :class:`stability.Workload` this spec describes with KV capacity ``memory``."""
        base = _base_workload(self.kind, self.prompt, self.decode, self.source,
                              self.trace_sha256, self.jitter or 0)
        if self.rate is not None:
            return base.scaled(self.rate)
        return base.scaled(self.load * memory / base.mean_kv_load())


@functools.lru_cache(maxsize=32)
def _base_workload(kind, prompt, decode, source, trace_sha256, jitter):
    """The workload at rate 1 (per class); cached since trace laws are costly to build."""
    if kind == "paper-4.1":
        return Workload.paper_4_1(rate=1.0, jitter=jitter,
                                  prompt=10 if prompt is None else parse_law(prompt))
    if kind == "synthetic":
        return Workload.single(1.0, parse_law(prompt), parse_law(decode))
    name = kind.split("-", 1)[1]
    if source == "synthetic":
        return traces.azure_workload(name, rate=1.0, synthetic=True)
    path = traces.azure_trace_path(name)
    if path is None or sha256_file(path) != trace_sha256:
        raise ValueError(f"this worker has no Azure {name} trace with SHA-256 {trace_sha256} "
                         f"(found {path}); install the same trace on every worker")
    return traces.trace_workload(path, rate=1.0)


FIELDS = tuple(f.name for f in fields(WorkloadSpec))
