"""Sweeps: a grid of simulation runs on any ``concurrent.futures.Executor`` (DESIGN 4).

A :class:`Sweep` is plain data: workload specs x policy specs x memory values x
replications, with a slot count, a warm-up, an engine and a root seed.  It expands into
:class:`Task` objects, one per run, each a pure function of its fields.  Finished runs
go to a :class:`stability.store.ResultStore` as they arrive, keyed by
:attr:`Task.key`, so a sweep run again (after Ctrl-C, a crash, or with more points)
only runs what is missing.

Seeds (common random numbers): the seed of replication r at workload spec w comes from
``SeedSequence(root_seed, spawn_key=(h1, h2, r))``, the node of the spawn tree of
``SeedSequence(root_seed)`` reached by ``.spawn(...)[h1].spawn(...)[h2].spawn(...)[r]``,
where (h1, h2) is a 64-bit hash of the canonical spec: the point is addressed by its
content rather than its position.  Every policy and every memory value at the same
workload spec and replication therefore gets the same seed (same arrivals, same lengths,
same budget stream: comparisons are paired), and adding points or replications to a
sweep leaves the seeds and keys of the existing runs unchanged.

Results do not depend on the executor, the number of workers or the order in which
runs finish: every run is computed from its task alone and stored under its key.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
import threading
import time
import tomllib
import warnings
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, wait
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path

import numpy as np

__all__ = ["WorkloadSpec", "PolicySpec", "Sweep", "Task", "SweepReport", "SweepError",
           "load_config", "run_task", "run_sweep", "task_seed"]

WORKLOAD_KINDS = ("paper-4.1", "synthetic", "azure-conv", "azure-code")
POLICY_KINDS = ("flow", "classes", "greedy", "conservative", "mcsf", "mc-benchmark", "amax", "amin")
ENGINES = ("batch", "stream")
_BUDGET_LAWS = ("deterministic", "poisson", "two-point")


class SweepError(RuntimeError):
    """A sweep could not finish (failed runs, a dead worker); finished rows are saved."""


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _number(path: str, value, low: float, strict: bool = False) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value) and (value > low if strict else value >= low))
    if not ok:
        raise ValueError(f"{path}: must be a finite number {'>' if strict else '>='} {low:g}, "
                         f"got {value!r}")
    return float(value)


def _integer(path: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{path}: must be an integer >= {low}, got {value!r}")
    return int(value)


def _text(path: str, value, choices=None) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{path}: must be a string, got {value!r}")
    if choices is not None and value not in choices:
        raise ValueError(f"{path}: {value!r} is not one of {', '.join(choices)}")
    return value


def _check_keys(path: str, table: dict, allowed, required=()) -> None:
    for key in table:
        if key not in allowed:
            raise ValueError(f"{_where(path, key)}: unknown key; expected one of "
                             f"{', '.join(allowed)}")
    for key in required:
        if key not in table:
            raise ValueError(f"{_where(path, key)}: missing")


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class WorkloadSpec:
    """A serialisable workload: ``kind`` and exactly one of ``rate`` or ``load``.

    kind : "paper-4.1" (Sec. 4.1's three classes; ``rate`` is per class), "synthetic"
        (one class with ``prompt`` and ``decode`` laws in the CLI syntax, e.g. "det:10",
        "geom-mean:40"), "azure-conv" or "azure-code" (the Azure trace lengths).
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

    def __post_init__(self):
        set_ = functools.partial(object.__setattr__, self)
        _text("kind", self.kind)
        if self.kind not in WORKLOAD_KINDS:
            raise ValueError(f"kind: unknown workload {self.kind!r}; expected "
                             f"{', '.join(WORKLOAD_KINDS)}")
        if (self.rate is None) == (self.load is None):
            raise ValueError("rate: give exactly one of rate (arrivals per slot) or load "
                             "(fraction of M / E[w])")
        if self.rate is not None:
            set_("rate", _number("rate", self.rate, 0.0))
        else:
            set_("load", _number("load", self.load, 0.0, strict=True))
        if self.kind == "synthetic":
            from stability.cli import parse_law

            for name, default in (("prompt", "det:10"), ("decode", "geom-mean:40")):
                text = _text(name, default if getattr(self, name) is None else getattr(self, name))
                try:
                    parse_law(text, name)
                except ValueError as err:
                    raise ValueError(f"{name}: {str(err).removeprefix(f'--{name} ')}") from None
                set_(name, text)
        else:
            for name in ("prompt", "decode"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only a synthetic workload takes length laws")
        if self.kind.startswith("azure-"):
            self._resolve_source()
        elif self.source is not None or self.trace_sha256 is not None:
            raise ValueError("source: only azure workloads take a source")

    def _resolve_source(self) -> None:
        from stability.traces import azure_trace_path

        source = _text("source", self.source or "auto", ("auto", "trace", "synthetic"))
        name = self.kind.split("-", 1)[1]
        if source == "synthetic":
            if self.trace_sha256 is not None:
                raise ValueError("trace_sha256: only a trace source has a trace hash")
            object.__setattr__(self, "source", "synthetic")
            return
        path = azure_trace_path(name)
        if path is None:
            if source == "trace" or self.trace_sha256 is not None:
                raise ValueError(f"source: the Azure {name} trace (azure_{name}_2023.csv) is "
                                 "not found; set STABILITY_TRACES or use source = 'synthetic'")
            warnings.warn(f"Azure {name} trace not found; the sweep uses its synthetic "
                          "stand-in", stacklevel=3)
            object.__setattr__(self, "source", "synthetic")
            return
        digest = _sha256_file(path)
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
        _check_keys(path, table, ("kind", "rate", "load", "prompt", "decode", "source",
                                  "trace_sha256"), ("kind",))
        try:
            return cls(**table)
        except ValueError as err:
            raise ValueError(f"{path}.{err}") from None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def canonical(self) -> str:
        return _canonical(self.to_dict())

    def build(self, memory: int):
        """The :class:`stability.Workload` this spec describes with KV capacity ``memory``."""
        base = _base_workload(self.kind, self.prompt, self.decode, self.source,
                              self.trace_sha256)
        if self.rate is not None:
            return base.scaled(self.rate)
        return base.scaled(self.load * memory / base.mean_kv_load())


@functools.lru_cache(maxsize=32)
def _base_workload(kind, prompt, decode, source, trace_sha256):
    """The workload at rate 1 (per class); cached since trace laws are costly to build."""
    from stability import traces
    from stability.cli import parse_law
    from stability.workload import Workload

    if kind == "paper-4.1":
        return Workload.paper_4_1(rate=1.0)
    if kind == "synthetic":
        return Workload.single(1.0, parse_law(prompt, "prompt"), parse_law(decode, "decode"))
    name = kind.split("-", 1)[1]
    if source == "synthetic":
        return traces.azure_workload(name, rate=1.0, synthetic=True)
    path = traces.azure_trace_path(name)
    if path is None or _sha256_file(path) != trace_sha256:
        raise ValueError(f"this worker has no Azure {name} trace with SHA-256 {trace_sha256} "
                         f"(found {path}); install the same trace on every worker")
    return traces.trace_workload(path, rate=1.0)


@dataclass(frozen=True)
class PolicySpec:
    """A serialisable policy (DESIGN 2).

    kind "flow": ``budget`` (E[B], activations per slot) and ``law`` ("deterministic",
    needing an integer budget, "poisson" or "two-point"; default deterministic for an
    integer budget, else two-point); "classes": ``budgets`` (b_k, one per class);
    "greedy": ``watermark`` in [0, 1) (default 0) and ``clearing`` in [0, 1) (beta-clearing,
    default 0); "conservative": ``max_decode``; the length-aware "mcsf", "mc-benchmark",
    "amax" and "amin": ``predictions`` ("exact", "noisy:SIGMA" or "interval:WIDTH";
    default exact, interval:0.5 for amax and amin).
    """

    kind: str
    budget: float | None = None
    law: str | None = None
    budgets: tuple | None = None
    watermark: float | None = None
    max_decode: int | None = None
    clearing: float | None = None
    predictions: str | None = None

    _FIELDS = {"flow": ("budget", "law"), "classes": ("budgets",),
               "greedy": ("watermark", "clearing"), "conservative": ("max_decode",),
               "mcsf": ("predictions",), "mc-benchmark": ("predictions",),
               "amax": ("predictions",), "amin": ("predictions",)}

    def __post_init__(self):
        set_ = functools.partial(object.__setattr__, self)
        _text("kind", self.kind)
        if self.kind not in POLICY_KINDS:
            raise ValueError(f"kind: unknown policy {self.kind!r}; expected "
                             f"{', '.join(POLICY_KINDS)}")
        for name in ("budget", "law", "budgets", "watermark", "max_decode", "clearing",
                     "predictions"):
            if getattr(self, name) is not None and name not in self._FIELDS[self.kind]:
                raise ValueError(f"{name}: a {self.kind} policy takes only "
                                 f"{', '.join(self._FIELDS[self.kind])}")
        if self.kind == "flow":
            if self.budget is None:
                raise ValueError("budget: missing")
            budget = _number("budget", self.budget, 0.0)
            law = _text("law", self.law or ("deterministic" if budget.is_integer()
                                             else "two-point"), _BUDGET_LAWS)
            if law == "deterministic" and not budget.is_integer():
                raise ValueError(f"budget: {self.budget!r} is not an integer; a deterministic "
                                 "budget must be (use law = 'poisson' or 'two-point')")
            set_("budget", int(budget) if law == "deterministic" else budget)
            set_("law", law)
        elif self.kind == "classes":
            if self.budgets is None:
                raise ValueError("budgets: missing")
            if not isinstance(self.budgets, (list, tuple)) or not self.budgets:
                raise ValueError(f"budgets: must be a list of integers >= 0, got "
                                 f"{self.budgets!r}")
            set_("budgets", tuple(_integer(f"budgets[{k}]", b, 0)
                                  for k, b in enumerate(self.budgets)))
        elif self.kind == "greedy":
            w = 0.0 if self.watermark is None else self.watermark
            if not (not isinstance(w, bool) and isinstance(w, (int, float)) and 0 <= w < 1):
                raise ValueError(f"watermark: must be a number in [0, 1), got {w!r}")
            set_("watermark", float(w))
            if self.clearing is not None:
                c = self.clearing
                if not (not isinstance(c, bool) and isinstance(c, (int, float)) and 0 <= c < 1):
                    raise ValueError(f"clearing: must be a number in [0, 1), got {c!r}")
                set_("clearing", float(c))
        elif self.kind in ("mcsf", "mc-benchmark", "amax", "amin"):
            default = "interval:0.5" if self.kind in ("amax", "amin") else "exact"
            text = _text("predictions", self.predictions or default)
            from stability.cli import parse_predictions

            try:
                parse_predictions(text)
            except ValueError as err:
                raise ValueError(f"predictions: {err}") from None
            set_("predictions", text)
        else:
            if self.max_decode is None:
                raise ValueError("max_decode: missing")
            set_("max_decode", _integer("max_decode", self.max_decode, 1))

    @classmethod
    def from_dict(cls, table: dict, path: str = "policy") -> "PolicySpec":
        """Validate a config table; errors name the key, e.g. ``policy[2].kind: ...``."""
        if not isinstance(table, dict):
            raise ValueError(f"{path}: must be a table, got {table!r}")
        _check_keys(path, table, ("kind", "budget", "law", "budgets", "watermark",
                                  "max_decode", "clearing", "predictions"), ("kind",))
        try:
            return cls(**table)
        except ValueError as err:
            raise ValueError(f"{path}.{err}") from None

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if v is not None}
        if "budgets" in d:
            d["budgets"] = list(d["budgets"])
        return d

    def canonical(self) -> str:
        return _canonical(self.to_dict())

    def build(self):
        """The policy object of :mod:`stability.policies`."""
        from stability import policies

        if self.kind == "flow":
            return policies.FlowControl(self.budget, law=self.law)
        if self.kind == "classes":
            return policies.ClassBudgets(self.budgets)
        if self.kind == "greedy":
            return policies.Greedy(self.watermark, clearing=self.clearing or 0.0)
        if self.kind == "conservative":
            return policies.Conservative(self.max_decode)
        from stability.cli import parse_predictions

        cls = {"mcsf": policies.MCSF, "mc-benchmark": policies.MCBenchmark,
               "amax": policies.AMax, "amin": policies.AMin}[self.kind]
        return cls(parse_predictions(self.predictions))


# ------------------------------------------------------------------------------ tasks
def task_seed(root_seed: int, workload: WorkloadSpec, replication: int) -> int:
    """The simulation seed of ``replication`` at ``workload`` (63-bit, see module doc)."""
    h = hashlib.sha256(workload.canonical().encode()).digest()
    point = (int.from_bytes(h[:4], "little"), int.from_bytes(h[4:8], "little"))
    seq = np.random.SeedSequence(root_seed, spawn_key=(*point, replication))
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class Task:
    """One run: a pure function of these fields (the package version included)."""

    workload: WorkloadSpec
    policy: PolicySpec
    memory: int
    slots: int
    warmup: int
    engine: str
    replication: int
    seed: int
    root_seed: int
    version: str

    def identity(self) -> dict:
        """Everything that determines the result (the replication only through its seed)."""
        return {"workload": self.workload.to_dict(), "policy": self.policy.to_dict(),
                "memory": self.memory, "slots": self.slots, "warmup": self.warmup,
                "engine": self.engine, "seed": self.seed, "version": self.version}

    @functools.cached_property
    def key(self) -> str:
        """128-bit hex hash of :meth:`identity`: the row's primary key."""
        return hashlib.sha256(_canonical(self.identity()).encode()).hexdigest()[:32]

    def columns(self) -> dict:
        """The parameter columns of the store (see ``stability.store.PARAM_COLUMNS``)."""
        w, p = self.workload, self.policy
        params = dict(self.identity(), replication=self.replication, root_seed=self.root_seed)
        return {
            "params": _canonical(params),
            "workload": w.canonical(), "policy": p.canonical(), "workload_kind": w.kind,
            "rate": w.rate, "load": w.load, "prompt": w.prompt, "decode": w.decode,
            "source": w.source, "policy_kind": p.kind,
            "budget": None if p.budget is None else float(p.budget), "budget_law": p.law,
            "budgets": None if p.budgets is None else _canonical(list(p.budgets)),
            "watermark": p.watermark, "max_decode": p.max_decode, "memory": self.memory,
            "slots": self.slots, "warmup": self.warmup, "engine": self.engine,
            "replication": self.replication, "seed": self.seed, "root_seed": self.root_seed,
            "version": self.version,
        }

    def describe(self) -> str:
        return (f"workload {self.workload.canonical()}, policy {self.policy.canonical()}, "
                f"M={self.memory}, replication {self.replication} (seed {self.seed})")


def run_task(task: Task) -> dict:
    """Run one task; returns its flat metrics, workload figures and wall time (seconds).

    Module-level and free of global state, so any executor (a process pool, Dask) can
    run it.
    """
    import stability
    from stability.store import flatten_metrics

    from stability.provenance import result_version

    if task.version != result_version():
        raise RuntimeError(f"this worker runs stability {result_version()} but the task "
                           f"was made by {task.version}; install the same version everywhere")
    began = time.perf_counter()
    workload = task.workload.build(task.memory)
    policy = task.policy.build()
    if task.engine == "batch":
        requests = workload.generate(task.slots, task.seed)
        result = stability.simulate(requests, policy, task.memory, horizon=task.slots,
                                    seed=task.seed, warmup=task.warmup)
        rejected = 0
    else:
        result = stability.simulate_stream(workload, policy, task.memory, task.slots,
                                           seed=task.seed, warmup=task.warmup)
        if result.interrupted:
            raise RuntimeError("the streaming run was interrupted; it is not stored")
        rejected = result.rejected
    metrics = flatten_metrics(result.metrics())
    metrics["rejected"] = int(rejected)
    return {"metrics": metrics, "total_rate": workload.total_rate,
            "offered_load": workload.mean_kv_load() / task.memory,
            "num_classes": workload.num_classes, "seconds": time.perf_counter() - began}


# ------------------------------------------------------------------------------ sweeps
@dataclass(frozen=True)
class Sweep:
    """A grid of runs: every workload x memory x policy, ``replications`` times.

    Parameters
    ----------
    name : a label (the default database is results/<name>.sqlite).
    workloads, policies : specs (dicts are validated into specs).
    memory : KV capacities M (tokens).
    replications : runs per point, with seeds spawned from ``root_seed``.
    slots : horizon of every run; ``warmup`` slots are left out of the metrics.
    engine : "batch" (``simulate`` on ``workload.generate(slots, seed)``) or "stream"
        (``simulate_stream``); both see the same arrivals for the same seed.
    """

    name: str
    workloads: tuple
    policies: tuple
    memory: tuple
    replications: int
    root_seed: int
    slots: int
    warmup: int = 0
    engine: str = "batch"

    def __post_init__(self):
        set_ = functools.partial(object.__setattr__, self)
        name = _text("sweep.name", self.name)
        if not name or any(c in name for c in "/\\\0") or name.startswith("."):
            raise ValueError(f"sweep.name: {name!r} must be a non-empty file-name-safe label")
        set_("replications", _integer("sweep.replications", self.replications, 1))
        set_("root_seed", _integer("sweep.root_seed", self.root_seed, 0))
        set_("slots", _integer("sweep.slots", self.slots, 1))
        set_("warmup", _integer("sweep.warmup", self.warmup, 0))
        if self.warmup >= self.slots:
            raise ValueError(f"sweep.warmup: {self.warmup} must be smaller than sweep.slots "
                             f"= {self.slots}")
        _text("sweep.engine", self.engine, ENGINES)
        memory = self.memory if isinstance(self.memory, (list, tuple)) else (self.memory,)
        if not memory:
            raise ValueError("sweep.memory: must list at least one KV capacity")
        set_("memory", tuple(_integer(f"sweep.memory[{i}]", m, 2) for i, m in enumerate(memory)))
        set_("workloads", _specs(self.workloads, WorkloadSpec, "workload"))
        set_("policies", _specs(self.policies, PolicySpec, "policy"))
        self._check_combinations()

    @property
    def version(self) -> str:
        """The package version and engine fingerprint that run (and key) the tasks."""
        from stability.provenance import result_version

        return result_version()

    def _check_combinations(self) -> None:
        """Fail now, not hours into the sweep, on a combination that cannot run."""
        for (i, w), m in product(enumerate(self.workloads), self.memory):
            try:
                workload = w.build(m)
            except ValueError as err:
                raise ValueError(f"workload[{i}]: {err}") from None
            longest = workload.max_request_tokens()
            if longest > m:  # infinite for unbounded laws: checked per run instead
                if math.isfinite(longest):
                    raise ValueError(f"sweep.memory: M={m} is smaller than the longest request "
                                     f"of workload[{i}] (l + o up to {int(longest)}), which "
                                     "could never complete")
            for j, p in enumerate(self.policies):
                try:
                    p.build().encode(m, workload.num_classes)
                except ValueError as err:
                    raise ValueError(f"policy[{j}]: with workload[{i}] ({w.kind}, "
                                     f"{workload.num_classes} classes): {err}") from None

    @classmethod
    def from_dict(cls, config: dict) -> "Sweep":
        """A sweep from a parsed config (see :func:`load_config` for the format)."""
        if not isinstance(config, dict):
            raise ValueError("the config must be a table")
        _check_keys("", config, ("sweep", "workload", "policy"), ("sweep", "workload",
                                                                   "policy"))
        head = config["sweep"]
        if not isinstance(head, dict):
            raise ValueError("sweep: must be a table ([sweep])")
        _check_keys("sweep", head, ("name", "root_seed", "replications", "slots", "warmup",
                                    "engine", "memory"),
                    ("name", "root_seed", "replications", "slots", "memory"))
        for table in ("workload", "policy"):
            if not isinstance(config[table], list):
                raise ValueError(f"{table}: must be an array of tables ([[{table}]])")
        return cls(name=head["name"], workloads=tuple(config["workload"]),
                   policies=tuple(config["policy"]), memory=head["memory"],
                   replications=head["replications"], root_seed=head["root_seed"],
                   slots=head["slots"], warmup=head.get("warmup", 0),
                   engine=head.get("engine", "batch"))

    def to_dict(self) -> dict:
        """The config of this sweep (after expansion and canonicalisation)."""
        return {"sweep": {"name": self.name, "root_seed": self.root_seed,
                          "replications": self.replications, "slots": self.slots,
                          "warmup": self.warmup, "engine": self.engine,
                          "memory": list(self.memory)},
                "workload": [w.to_dict() for w in self.workloads],
                "policy": [p.to_dict() for p in self.policies]}

    def fingerprint(self) -> str:
        """A hash of the canonical config and the package version."""
        text = _canonical({"config": self.to_dict(), "version": self.version})
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def tasks(self) -> list:
        """Every run, replication-major (so an interrupted sweep holds whole replications
        of every point first)."""
        seeds = {(i, r): task_seed(self.root_seed, w, r)
                 for i, w in enumerate(self.workloads) for r in range(self.replications)}
        return [Task(w, p, m, self.slots, self.warmup, self.engine, r, seeds[i, r],
                     self.root_seed, self.version)
                for r in range(self.replications)
                for i, w in enumerate(self.workloads)
                for m in self.memory
                for p in self.policies]


def _specs(items, cls, table: str) -> tuple:
    """Validated specs; a list value in a table is a grid axis (budgets: a list of lists)."""
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"{table}: give at least one [[{table}]] table")
    out, seen = [], {}
    for i, item in enumerate(items):
        path = f"{table}[{i}]"
        if isinstance(item, cls):
            expanded = [item]
        else:
            if not isinstance(item, dict):
                raise ValueError(f"{path}: must be a table, got {item!r}")
            axes = []
            for key, value in item.items():
                nested = key == "budgets" and isinstance(value, list) and value and all(
                    isinstance(v, list) for v in value)
                if isinstance(value, list) and (key != "budgets" or nested):
                    if not value:
                        raise ValueError(f"{path}.{key}: an empty list gives no runs")
                    axes.append([(key, v) for v in value])
                else:
                    axes.append([(key, value)])
            expanded = [cls.from_dict(dict(choice), path) for choice in product(*axes)]
        for spec in expanded:
            text = spec.canonical()
            if text in seen:
                raise ValueError(f"{path}: duplicates {seen[text]} ({text})")
            seen[text] = path
            out.append(spec)
    return tuple(out)


def load_config(path) -> Sweep:
    """Read a sweep from a TOML file.

    Format::

        [sweep]
        name = "example"          # default database: results/example.sqlite
        root_seed = 1
        replications = 5
        slots = 20000
        warmup = 2000             # optional, default 0
        engine = "batch"          # optional: batch or stream
        memory = [16492]

        [[workload]]              # one or more
        kind = "paper-4.1"
        load = [0.8, 0.95]        # a list is a grid axis

        [[policy]]                # one or more
        kind = "flow"
        budget = 12
        law = "deterministic"

    Errors name the file and the key, e.g. ``policy[2].kind: unknown policy 'fifo'``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such sweep config") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None
    try:
        return Sweep.from_dict(config)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


# ---------------------------------------------------------------------------- running
@dataclass(frozen=True)
class SweepReport:
    """What a call of :func:`run_sweep` did: runs in the sweep, already stored before,
    newly stored, failed (not stored; a re-run retries them), wall time."""

    total: int
    skipped: int
    added: int
    failed: tuple = ()
    seconds: float = 0.0


def _worker_init() -> None:
    """Pool workers leave Ctrl-C to the main process, and exit if it dies (so SIGKILL of
    the main process leaves no orphans behind)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def local_executor(workers: int | None = None) -> Executor:
    """A process pool of ``workers`` processes (default: every core), 'spawn' start method
    (a fork of a process holding numba's threads is not safe)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = (os.cpu_count() or 1) if workers is None else _integer("workers", workers, 1)
    return ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                               mp_context=multiprocessing.get_context("spawn"))


def _stop_local(executor: Executor) -> None:
    """Stop a pool we made now: cancel queued runs and end its worker processes."""
    executor.shutdown(wait=False, cancel_futures=True)
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def run_sweep(sweep: Sweep, store, executor: Executor | None = None,
              workers: int | None = None, progress: bool | None = None,
              max_in_flight: int | None = None) -> SweepReport:
    """Run every task of ``sweep`` not yet in ``store`` and store each result as it arrives.

    Parameters
    ----------
    sweep : the sweep.
    store : an open :class:`stability.store.ResultStore` or a path (created if missing).
    executor : any ``concurrent.futures.Executor`` (e.g. ``Client.get_executor()`` of Dask
        ``distributed``); None makes a local process pool of ``workers`` processes.
    progress : a tqdm bar on stderr (None: only when stderr is a terminal).
    max_in_flight : runs submitted ahead (default four per worker; 256 for an executor
        passed in), which bounds memory and the work lost to an interruption.

    Runs that raise are reported in the result (and not stored); a dead worker
    (:class:`SweepError`) or an interruption stops the sweep with every finished row
    saved.  The local pool starts its workers with 'spawn', so a script calling this
    must guard its entry point with ``if __name__ == "__main__":`` (as for any
    multiprocessing or Dask LocalCluster program).
    """
    from tqdm import tqdm

    from stability.store import ResultStore

    began = time.perf_counter()
    own_store = not isinstance(store, ResultStore)
    if own_store:
        store = ResultStore(store, create=True)
    try:
        store.record_sweep(sweep.name, sweep.fingerprint(), sweep.to_dict(), sweep.version)
        tasks = sweep.tasks()
        done = store.keys()
        todo = [t for t in tasks if t.key not in done]
        skipped = len(tasks) - len(todo)
        if not todo:
            return SweepReport(len(tasks), skipped, 0, (), time.perf_counter() - began)
        own_executor = executor is None
        if own_executor:
            workers = min((os.cpu_count() or 1) if workers is None else workers, len(todo))
            executor = local_executor(workers)
            max_in_flight = max_in_flight or 4 * workers
        max_in_flight = max_in_flight or 256
        if progress is None:
            progress = sys.stderr.isatty()
        bar = tqdm(total=len(todo), unit="run", desc=sweep.name, disable=not progress,
                   dynamic_ncols=True, smoothing=0.05, file=sys.stderr)
        added, failed = 0, []
        pending: dict = {}
        queue = iter(todo)
        clean = False
        try:
            while True:
                while len(pending) < max_in_flight:
                    task = next(queue, None)
                    if task is None:
                        break
                    pending[executor.submit(run_task, task)] = task
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = pending.pop(future)
                    try:
                        out = future.result()
                    except BrokenExecutor:
                        raise
                    except Exception as err:  # a failing run must not stop the others
                        failed.append((task, f"{type(err).__name__}: {err}"))
                        continue
                    row = task.columns()
                    row.update(key=task.key, metrics=out["metrics"], seconds=out["seconds"],
                               total_rate=out["total_rate"], offered_load=out["offered_load"],
                               num_classes=out["num_classes"])
                    added += store.add(row)
                    bar.update(1)
            clean = True
        except BrokenExecutor as err:
            raise SweepError(
                f"a worker process died ({type(err).__name__}: {err}); {added} new runs were "
                f"saved in {store.path}; run the sweep again to resume") from None
        finally:
            bar.close()
            if own_executor:
                if clean:
                    executor.shutdown(wait=True)
                else:
                    _stop_local(executor)
            else:
                for future in pending:
                    future.cancel()
        return SweepReport(len(tasks), skipped, added, tuple(failed),
                           time.perf_counter() - began)
    finally:
        if own_store:
            store.close()


# ------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    """``stability sweep [--resume] CONFIG.toml``."""
    parser.add_argument("config", help="sweep config (TOML; see experiments/configs/"
                                       "example_sweep.toml)")
    parser.add_argument("--db", metavar="PATH",
                        help="results store (SQLite; default results/<name>.sqlite)")
    parser.add_argument("--resume", action="store_true",
                        help="continue in an existing store: needed when it holds runs of a "
                             "different configuration (they are kept; finished runs of this "
                             "one are skipped); refused if the store does not exist")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: every core)")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="run on Dask distributed: a scheduler address "
                             "(tcp://HOST:PORT) or 'local' for a LocalCluster on this machine")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no summary")


def _check_resume(db: Path, sweep: Sweep, resume: bool) -> None:
    """Refuse to mix configurations silently: running a config again continues it, but
    writing a different config into an existing store needs --resume."""
    from stability.store import ResultStore

    if not db.exists():
        if resume:
            raise ValueError(f"--resume: {db} does not exist, so there is nothing to resume "
                             "(run without --resume to start the sweep)")
        return
    with ResultStore(db) as store:
        recorded = store.sweeps()
        runs = len(store)
    if resume or not recorded and not runs:
        return
    if sweep.fingerprint() not in {fp for _, fp, _, _, _ in recorded}:
        names = sorted({name for name, _, _, _, _ in recorded}) or ["(unknown)"]
        raise ValueError(f"{db} already holds {runs} runs of another sweep configuration "
                         f"({', '.join(names)}); pass --resume to add this configuration's "
                         "runs to it (finished runs are reused), or choose another --db")


def _executor_from_args(args):
    """(executor or None, closer): a Dask ClientExecutor for --dask, else None."""
    if not args.dask:
        return None, lambda: None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--dask needs the 'distributed' package (pip install "
                         "'stability[dask]')") from None
    if args.dask == "local":
        n = args.workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)

        def close():
            client.close()
            cluster.close()
    else:
        if args.workers is not None:
            raise ValueError("--workers applies to the local pool and --dask local; a Dask "
                             "scheduler's workers are set where they are started")
        client = Client(args.dask)
        close = client.close
    return client.get_executor(), close


def run_command(args) -> int:
    """``stability sweep``: run (or continue) a sweep into its results store."""
    sweep = load_config(args.config)
    db = Path(args.db) if args.db else Path("results") / f"{sweep.name}.sqlite"
    if args.workers is not None:
        _integer("--workers", args.workers, 1)
    _check_resume(db, sweep, args.resume)
    executor, close = _executor_from_args(args)
    try:
        report = run_sweep(sweep, db, executor=executor, workers=args.workers,
                           progress=False if args.quiet else None)
    except SweepError as err:
        print(f"stability: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"stability: interrupted; finished runs are saved in {db}; run again to resume",
              file=sys.stderr)
        return 130
    finally:
        close()
    if not args.quiet:
        print(f"sweep {sweep.name}: {report.total} runs, {report.skipped} already in {db}, "
              f"{report.added} new, {len(report.failed)} failed ({report.seconds:.1f} s)")
    if report.failed:
        task, error = report.failed[0]
        print(f"stability: error: {len(report.failed)} runs failed and were not stored; "
              f"first: {task.describe()}: {error}", file=sys.stderr)
        return 1
    return 0
