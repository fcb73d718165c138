"""Sweeps as plain data: workloads x policies x worlds x memory values x replications.

A :class:`Sweep` expands into :class:`Task` objects, one per run, each a pure function of
its fields.  Policies are given as spec tables ``{kind = "flow", budget = 12}`` and built
through the policy registry (``stability.policies.from_spec``), so a new policy needs no
edit here; workloads are :class:`~stability.workload.spec.WorkloadSpec`; worlds are the
rules beyond the policy (eviction, requeue, block size: docs/model.md 2.3).

Seeds (common random numbers): the seed of replication r at workload spec w comes from
``SeedSequence(root_seed, spawn_key=(h1, h2, r))``, the node of the spawn tree of
``SeedSequence(root_seed)`` reached by ``.spawn(...)[h1].spawn(...)[h2].spawn(...)[r]``,
where (h1, h2) is a 64-bit hash of the canonical spec: the point is addressed by its
content rather than its position.  Every policy, world and memory value at the same
workload spec and replication therefore gets the same seed (same arrivals, same lengths,
same budget stream: comparisons are paired), and adding points or replications to a
sweep leaves the seeds and keys of the existing runs unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np

from stability import validation
from stability.engine.codes import EVICTION_RULES, REQUEUE_RULES
from stability.policies import Policy, from_spec, policy_class
from stability.simulate import check_batch_size, check_stream_size
from stability.workload.spec import WorkloadSpec

__all__ = ["WorldSpec", "Sweep", "Task", "load_config", "task_seed", "ENGINES", "canonical"]

ENGINES = ("batch", "stream")


def canonical(value) -> str:
    """Canonical JSON (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _check_keys(path: str, table: dict, allowed, required=()) -> None:
    for key in table:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise ValueError(f"{where}: unknown key; expected one of {', '.join(allowed)}")
    for key in required:
        if key not in table:
            raise ValueError(f"{path}.{key}: missing" if path else f"{key}: missing")


def _prefixed(path: str, call, *args):
    """``call(*args)`` with a ValueError's message prefixed by ``path``."""
    try:
        return call(*args)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


@dataclass(frozen=True)
class WorldSpec:
    """The rules of a run beyond its policy; None means the policy's default.

    ``clock`` is a clock text of :func:`stability.clock.parse_clock` (``unit``, ``jaillet``,
    ``li-dai-peng``, ``linear:C0,C_SEQ,C_CTX,C_PREFILL``, ``profile:CSV``).  Under a timed
    clock a run keeps its workload's fraction of the critical rate: a workload at total
    rate lambda per slot (lambda* = M / E[w]) arrives at lambda lambda*_s / lambda* requests
    per second, lambda*_s the critical rate per second (``stability.theory.clocked``);
    arrivals are drawn over ``slots`` d* seconds (d* the iteration of a full memory), the
    horizon stays ``slots`` iterations, and only the batch engine runs timed clocks.
    """

    eviction: str | None = None
    requeue: str | None = None
    block_size: int | None = None
    clock: str | None = None
    _clock: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.eviction is not None:
            validation.choice("eviction", self.eviction, EVICTION_RULES)
        if self.requeue is not None:
            validation.choice("requeue", self.requeue, REQUEUE_RULES)
        if self.block_size is not None:
            object.__setattr__(self, "block_size",
                               validation.integer("block_size", self.block_size, 1))
        if self.clock is not None:
            if not isinstance(self.clock, str):
                raise ValueError(f"clock must be a clock text such as 'jaillet' or "
                                 f"'linear:C0,C_SEQ,C_CTX,C_PREFILL', got {self.clock!r}")
            from stability.clock import parse_clock

            # parsed now (a bad clock fails before any run) and once (a profile is fitted)
            object.__setattr__(self, "_clock", parse_clock(self.clock))

    def clock_object(self):
        """The parsed clock, or None."""
        return self._clock

    @property
    def timed(self) -> bool:
        clock = self.clock_object()
        return clock is not None and clock.encode() is not None

    @classmethod
    def from_dict(cls, table: dict, path: str = "world") -> "WorldSpec":
        if not isinstance(table, dict):
            raise ValueError(f"{path}: must be a table, got {table!r}")
        _check_keys(path, table, ("eviction", "requeue", "block_size", "clock"))
        return _prefixed(path, lambda: cls(**table))

    def to_dict(self) -> dict:
        return {k: v for k, v in (("eviction", self.eviction), ("requeue", self.requeue),
                                  ("block_size", self.block_size), ("clock", self.clock))
                if v is not None}

    def kwargs(self) -> dict:
        """Keyword arguments of ``simulate`` / ``simulate_stream`` (the clock apart)."""
        return {k: v for k, v in self.to_dict().items() if k != "clock"}


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
    policy: Policy
    world: WorldSpec
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
        return {"workload": self.workload.to_dict(), "policy": self.policy.to_spec(),
                "world": self.world.to_dict(), "memory": self.memory, "slots": self.slots,
                "warmup": self.warmup, "engine": self.engine, "seed": self.seed,
                "version": self.version}

    @functools.cached_property
    def key(self) -> str:
        """128-bit hex hash of :meth:`identity`: the row's primary key."""
        return hashlib.sha256(canonical(self.identity()).encode()).hexdigest()[:32]

    def columns(self) -> dict:
        """The parameter columns of the results store (``stability.store.PARAM_COLUMNS``)."""
        w = self.workload
        params = dict(self.identity(), replication=self.replication, root_seed=self.root_seed)
        return {
            "params": canonical(params), "workload": w.canonical(),
            "policy": canonical(self.policy.to_spec()), "world": canonical(self.world.to_dict()),
            "workload_kind": w.kind, "rate": w.rate, "load": w.load, "prompt": w.prompt,
            "decode": w.decode, "source": w.source, "policy_kind": self.policy.kind,
            "memory": self.memory, "slots": self.slots, "warmup": self.warmup,
            "engine": self.engine, "replication": self.replication, "seed": self.seed,
            "root_seed": self.root_seed, "version": self.version,
        }

    def describe(self) -> str:
        return (f"workload {self.workload.canonical()}, policy "
                f"{canonical(self.policy.to_spec())}, world {canonical(self.world.to_dict())}, "
                f"M={self.memory}, replication {self.replication} (seed {self.seed})")


@dataclass(frozen=True)
class Sweep:
    """A grid of runs: every workload x memory x world x policy, ``replications`` times.

    Parameters
    ----------
    name : str
        A label (the default database is results/<name>.sqlite).
    workloads, policies : tuple
        Workload specs and policies (dicts are validated: ``{kind = "flow", budget = 12}``).
    memory : tuple of int
        KV capacities M (tokens).
    replications : int
        Runs per point, with seeds spawned from ``root_seed``.
    slots : int
        Horizon of every run; ``warmup`` slots are left out of the metrics.
    engine : {"batch", "stream"}
        ``simulate`` on ``workload.generate(slots, seed)`` or ``simulate_stream``; both
        see the same arrivals for the same seed.
    worlds : tuple
        World specs (dicts are validated); default one world of the policies' defaults.
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
    worlds: tuple = (WorldSpec(),)

    def __post_init__(self):
        set_ = functools.partial(object.__setattr__, self)
        name = self.name
        if not isinstance(name, str) or not name or any(c in name for c in "/\\\0") \
                or name.startswith("."):
            raise ValueError(f"sweep.name: {name!r} must be a non-empty file-name-safe label")
        set_("replications", _prefixed("sweep", validation.integer, "replications",
                                       self.replications, 1))
        set_("root_seed", _prefixed("sweep", validation.integer, "root_seed", self.root_seed, 0))
        set_("slots", _prefixed("sweep", validation.integer, "slots", self.slots, 1,
                                validation.MAX_SLOTS, False, True))  # 1e6 in TOML is a float
        set_("warmup", _prefixed("sweep", validation.integer, "warmup", self.warmup, 0))
        if self.warmup >= self.slots:
            raise ValueError(f"sweep.warmup: {self.warmup} must be smaller than sweep.slots "
                             f"= {self.slots}")
        _prefixed("sweep", validation.choice, "engine", self.engine, ENGINES)
        memory = self.memory if isinstance(self.memory, (list, tuple)) else (self.memory,)
        if not memory:
            raise ValueError("sweep.memory: must list at least one KV capacity")
        set_("memory", tuple(_prefixed("sweep", validation.memory, m, f"memory[{i}]")
                             for i, m in enumerate(memory)))
        set_("workloads", _expand(self.workloads, "workload", _workload))
        set_("policies", _expand(self.policies, "policy", _policy))
        set_("worlds", _expand(self.worlds, "world", _world))
        if self.engine == "stream" and any(w.timed for w in self.worlds):
            raise ValueError("sweep.engine: a timed world clock runs on the batch engine only; "
                             "set engine = \"batch\"")
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
            if longest > m and math.isfinite(longest):  # unbounded laws: checked per run
                raise ValueError(f"sweep.memory: M={m} is smaller than the longest request "
                                 f"of workload[{i}] (l + o up to {int(longest)}), which "
                                 "could never complete")
            try:  # what one run would allocate, before any run starts
                if self.engine == "batch":
                    check_batch_size(workload, self.slots)
                else:
                    check_stream_size(workload)
            except ValueError as err:
                raise ValueError(f"sweep.slots: workload[{i}]: {err}") from None
            for j, p in enumerate(self.policies):
                try:
                    p.encode(m, workload.num_classes)
                except ValueError as err:
                    raise ValueError(f"policy[{j}]: with workload[{i}] ({w.kind}, "
                                     f"{workload.num_classes} classes): {err}") from None

    @classmethod
    def from_dict(cls, config: dict) -> "Sweep":
        """A sweep from a parsed config (see :func:`load_config` for the format)."""
        if not isinstance(config, dict):
            raise ValueError("the config must be a table")
        _check_keys("", config, ("sweep", "workload", "policy", "world"),
                    ("sweep", "workload", "policy"))
        head = config["sweep"]
        if not isinstance(head, dict):
            raise ValueError("sweep: must be a table ([sweep])")
        _check_keys("sweep", head, ("name", "root_seed", "replications", "slots", "warmup",
                                    "engine", "memory"),
                    ("name", "root_seed", "replications", "slots", "memory"))
        for table in ("workload", "policy", "world"):
            if table in config and not isinstance(config[table], list):
                raise ValueError(f"{table}: must be an array of tables ([[{table}]])")
        return cls(name=head["name"], workloads=tuple(config["workload"]),
                   policies=tuple(config["policy"]), memory=head["memory"],
                   replications=head["replications"], root_seed=head["root_seed"],
                   slots=head["slots"], warmup=head.get("warmup", 0),
                   engine=head.get("engine", "batch"),
                   worlds=tuple(config.get("world", [{}])))

    def to_dict(self) -> dict:
        """The config of this sweep (after expansion and canonicalisation)."""
        return {"sweep": {"name": self.name, "root_seed": self.root_seed,
                          "replications": self.replications, "slots": self.slots,
                          "warmup": self.warmup, "engine": self.engine,
                          "memory": list(self.memory)},
                "workload": [w.to_dict() for w in self.workloads],
                "policy": [p.to_spec() for p in self.policies],
                "world": [w.to_dict() for w in self.worlds]}

    def fingerprint(self) -> str:
        """A hash of the canonical config and the package version."""
        text = canonical({"config": self.to_dict(), "version": self.version})
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def tasks(self) -> list:
        """Every run, replication-major (so an interrupted sweep holds whole replications
        of every point first)."""
        seeds = {(i, r): task_seed(self.root_seed, w, r)
                 for i, w in enumerate(self.workloads) for r in range(self.replications)}
        return [Task(w, p, world, m, self.slots, self.warmup, self.engine, r, seeds[i, r],
                     self.root_seed, self.version)
                for r in range(self.replications)
                for i, w in enumerate(self.workloads)
                for m in self.memory
                for world in self.worlds
                for p in self.policies]


def _workload(table: dict, path: str):
    return WorkloadSpec.from_dict(table, path)


def _world(table: dict, path: str):
    return WorldSpec.from_dict(table, path)


def _policy(table: dict, path: str):
    return from_spec(table, path)


def _list_valued(table: dict, key: str) -> bool:
    """True if ``key`` of a policy table takes a list as one value (e.g. ``budgets``)."""
    try:
        cls = policy_class(table.get("kind"))
    except (ValueError, TypeError):
        return False
    fields = {f.name: f for f in cls.parameters()}
    return key in fields and fields[key].metadata["plain"] is list


def _expand(items, table: str, build) -> tuple:
    """Validated specs; a list value in a table is a grid axis (for a list-valued
    parameter such as ``budgets``, a list of lists is)."""
    kind = {"workload": WorkloadSpec, "policy": Policy, "world": WorldSpec}[table]
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"{table}: give at least one [[{table}]] table")
    out, seen = [], {}
    for i, item in enumerate(items):
        path = f"{table}[{i}]"
        if isinstance(item, kind):
            expanded = [item]
        else:
            if not isinstance(item, dict):
                raise ValueError(f"{path}: must be a table, got {item!r}")
            axes = []
            for key, value in item.items():
                if isinstance(value, list) and _list_valued(item, key):
                    nested = bool(value) and all(isinstance(v, list) for v in value)
                    axes.append([(key, v) for v in value] if nested else [(key, value)])
                elif isinstance(value, list):
                    if not value:
                        raise ValueError(f"{path}.{key}: an empty list gives no runs")
                    axes.append([(key, v) for v in value])
                else:
                    axes.append([(key, value)])
            expanded = [build(dict(choice), path) for choice in product(*axes)]
        for spec in expanded:
            text = canonical(spec.to_spec() if isinstance(spec, Policy) else spec.to_dict())
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

        [[policy]]                # one or more: a kind and its parameters
        kind = "flow"
        budget = 12

        [[world]]                 # optional: eviction, requeue, block_size, clock
        eviction = ["restart", "recompute"]
        clock = "jaillet"         # timed: rates read against lambda* per second

    Errors name the file and the key, e.g. ``policy[2].kind: kind must be one of ...``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such sweep config") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a sweep config") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text (TOML) file") from None
    try:
        return Sweep.from_dict(config)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
