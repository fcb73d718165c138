"""Shared machinery of the experiments: run context, sweeps into the store, caching,
confidence intervals and verification rows.

Every experiment module has a ``compute(ctx)`` step (simulations through
:mod:`stability.sweep` into an SQLite store under ``ctx.cache``, plus theory; writes
``<name>.json`` with parameters, seeds, versions and summaries) and a ``verify(results)``
step that turns the results into :class:`Check` rows; its figure script in
``paper_figures/`` reads the JSON (and ``.npz`` series) only.

Confidence intervals are two-sided Student-t intervals at level :data:`LEVEL` over
independent replications (n stated with every number), computed by
:func:`stability.intervals.student_t` (the one helper the results summaries use too);
rates of events that never happened are reported as exact Poisson upper bounds
(:func:`event_rate`), never as a zero-width interval.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

MODES = ("smoke", "quick", "full")
LEVEL = 0.95
"""Confidence level of the intervals drawn and reported (two-sided Student-t over
replications)."""
CHECK_LEVEL = 0.99
"""Level of the intervals that test "the theoretical value lies inside" (STYLE: stochastic
claims are tested at alpha = 0.01); Bonferroni-corrected where a row tests several."""
VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")


# ------------------------------------------------------------------------------ context
@dataclass
class Context:
    """Where an experiment writes and how it runs.

    mode : "smoke" (CI test), "quick" (``--quick``) or "full" (publication budgets).
    output : figures and reports go here.
    cache : results of this mode (stores, JSON, npz): ``output/cache/<mode>``.
    executor : the executor shared by every sweep and task: the process pool, or (one
        worker) an :class:`InlineExecutor`, wrapped by ``stability reproduce`` in a
        :class:`ProgressExecutor`; None: run in this process.
    workers : processes in the pool.
    """

    mode: str
    output: Path
    cache: Path
    executor: Executor | None = None
    workers: int = 1
    quiet: bool = False
    started: float = field(default_factory=time.perf_counter)

    def pick(self, smoke, quick, full):
        """The value for this run's mode."""
        return {"smoke": smoke, "quick": quick, "full": full}[self.mode]

    def log(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.perf_counter() - self.started
            print(f"[{elapsed:7.1f} s] {message}", file=sys.stderr, flush=True)


class InlineExecutor(Executor):
    """Runs each submitted call at once in this process (``--workers 1``)."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # delivered through the future, as a pool would
            future.set_exception(err)
        return future


class Progress:
    """Progress of ``total`` units of work inside an experiment, logged through
    :meth:`Context.log` at most every :attr:`EVERY` seconds (and once when all are done):
    done, share, time spent and an estimate of the time left.  Thread-safe."""

    EVERY = 20.0

    def __init__(self, ctx: Context, what: str, total: int, unit: str = "runs"):
        self.ctx, self.what, self.total, self.unit = ctx, what, int(total), unit
        self.done = 0
        self.began = time.perf_counter()
        self.last = self.began
        self.lock = threading.Lock()

    def step(self, count: int = 1) -> None:
        with self.lock:
            self.done += count
            now = time.perf_counter()
            if now - self.last < self.EVERY or self.done >= self.total:
                return
            self.last = now
            spent = now - self.began
            left = spent * (self.total - self.done) / self.done if self.done else math.nan
            self.ctx.log(f"{self.what}: {self.done} of {self.total} {self.unit} done "
                         f"({100 * self.done / max(self.total, 1):.0f}%) in {spent:.0f} s, "
                         f"about {left:.0f} s left")


class ProgressExecutor(Executor):
    """An executor that reports, through :meth:`Context.log`, how many of the tasks
    submitted to it have finished (at most every 20 s): progress inside experiments that
    submit their own tasks.  ``inner`` is the executor doing the work."""

    EVERY = 20.0

    def __init__(self, inner: Executor, ctx: Context):
        self.inner, self.ctx = inner, ctx
        self.lock = threading.Lock()
        self._reset("")

    def _reset(self, what: str) -> None:
        self.what, self.submitted, self.finished = what, 0, 0
        self.began = self.last = time.perf_counter()

    def experiment(self, name: str) -> None:
        """Count from zero for the experiment ``name``."""
        with self.lock:
            self._reset(name)

    def submit(self, fn, /, *args, **kwargs):
        with self.lock:
            self.submitted += 1
        future = self.inner.submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future) -> None:
        with self.lock:
            self.finished += 1
            now = time.perf_counter()
            if now - self.last < self.EVERY:
                return
            self.last = now
            spent = now - self.began
            self.ctx.log(f"{self.what}: {self.finished} of {self.submitted} tasks submitted "
                         f"so far have finished ({spent:.0f} s)")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


# ------------------------------------------------------------------------------ sweeps
def run_sweeps(ctx: Context, store_name: str, sweeps: list) -> dict:
    """Run ``sweeps`` (concurrently, on the shared executor) into ``<cache>/<store_name>.sqlite``
    and return the stored runs of exactly these sweeps as numpy columns.

    Runs already in the store are not run again, so a second call costs nothing.
    """
    from stability import store as result_store
    from stability.sweep import run_sweep

    # the schema version in the name: a store of an older layout is left alone, not refused
    db = ctx.cache / f"{store_name}-s{result_store.SCHEMA_VERSION}.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    executor = ctx.executor or InlineExecutor()
    keys = {t.key for s in sweeps for t in s.tasks()}
    # Create the store here: creation is not meant to race between threads of one process.
    with result_store.ResultStore(db, create=True) as store:
        todo = len(keys - store.keys())
    progress = Progress(ctx, store_name, todo, "runs")
    executor = getattr(executor, "inner", executor)  # counted here, not by the wrapper
    # One thread per sweep keeps the pool busy across sweeps of different shapes.
    with ThreadPoolExecutor(max_workers=max(1, min(len(sweeps), 16))) as threads:
        reports = list(threads.map(
            lambda s: run_sweep(s, db, executor=executor, progress=False,
                                max_in_flight=4 * max(ctx.workers, 1),
                                on_result=progress.step), sweeps))
    failed = [f for r in reports for f in r.failed]
    if failed:
        task, error = failed[0]
        raise RuntimeError(f"{len(failed)} runs of {store_name} failed; first: "
                           f"{task.describe()}: {error}")
    added = sum(r.added for r in reports)
    ctx.log(f"{store_name}: {len(keys)} runs ({added} new, {len(keys) - added} from the store)")
    columns = result_store.load(db)
    if not len(columns.get("key", ())):
        raise RuntimeError(f"{db} holds no runs")
    mask = np.array([k in keys for k in columns["key"]])
    return {name: values[mask] for name, values in columns.items()}


def sweep_seeds(sweeps: list) -> dict:
    """{workload spec: [seed of replication 0, 1, ...]} over the given sweeps."""
    out: dict = {}
    for s in sweeps:
        for t in s.tasks():
            seeds = out.setdefault(t.workload.canonical(), {})
            seeds[t.replication] = t.seed
    return {w: [seeds[r] for r in sorted(seeds)] for w, seeds in out.items()}


def policy_key(spec: dict) -> str:
    """The canonical JSON of a policy spec, as the results store holds it."""
    from stability.policies import from_spec
    from stability.sweep.spec import canonical

    return canonical(from_spec(spec).to_spec())


def select(columns: dict, **conditions) -> dict:
    """Rows whose columns equal the given values (JSON specs compared canonically)."""
    mask = np.ones(len(columns["key"]), dtype=bool)
    for name, value in conditions.items():
        col = columns[name]
        if isinstance(value, float):
            mask &= np.isclose(col.astype(float), value, rtol=0, atol=1e-12)
        else:
            mask &= col == value
    return {name: values[mask] for name, values in columns.items()}


def half_sweep(sweep):
    """The same sweep run for the first half of the horizon only.

    Every run of it is the exact prefix of the matching full run: arrivals are drawn slot
    by slot from the same seed and budgets are a function of (seed, t), so the state after
    T/2 slots is the same.  :func:`growth_rate` uses that to measure the second half.
    """
    from dataclasses import replace

    half = sweep.slots // 2
    return replace(sweep, name=f"{sweep.name}-half", slots=half, warmup=half // 2)


def growth_rate(full: dict, half: dict) -> np.ndarray:
    """Growth of the number of requests in the system over the second half of each run,
    (arrivals - completions) / slot = (N(T) - N(T/2)) / (T - T/2), requests per slot.

    ``full`` and ``half`` are the rows of one point (same workload and policy) from a sweep
    and its :func:`half_sweep`; rows are matched by seed.  N counts waiting and active
    requests after the last slot (``unfinished``).  A stable system gives 0 up to noise of
    order sd(N) / T; a queue growing at rate c gives c.
    """
    by_seed = dict(zip(half["seed"].tolist(), zip(half["unfinished"].tolist(),
                                                  half["slots"].tolist())))
    out = []
    for seed, n_end, slots in zip(full["seed"].tolist(), full["unfinished"].tolist(),
                                  full["slots"].tolist()):
        n_half, half_slots = by_seed[seed]
        out.append((n_end - n_half) / (slots - half_slots))
    return np.array(out, dtype=float)


# ---------------------------------------------------------------------------- intervals
@dataclass(frozen=True)
class Interval:
    """Mean of n replications with its two-sided Student-t interval at :data:`LEVEL`."""

    mean: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values, level: float = LEVEL) -> "Interval":
        """The Student-t interval of ``values`` (:func:`stability.intervals.student_t`)."""
        from stability.intervals import student_t

        t = student_t(values, float(level))
        return cls(t.mean, t.low, t.high, t.n)

    @property
    def degenerate(self) -> bool:
        """True when every replication gave the same value: the interval has zero width
        and says nothing about the spread."""
        return self.n >= 2 and self.low == self.high == self.mean

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def text(self, digits: int = 4, unit: str = "") -> str:
        u = f" {unit}" if unit else ""
        if self.n < 2 or math.isnan(self.low):
            return f"{_g(self.mean, digits)}{u} (n={self.n})"
        if self.degenerate:
            return f"{_g(self.mean, digits)}{u} in each of {self.n} replications (no interval)"
        return (f"{_g(self.mean, digits)}{u} [{_g(self.low, digits)}, {_g(self.high, digits)}] "
                f"(n={self.n})")

    def level_text(self, level: float, digits: int = 4, unit: str = "") -> str:
        """``text`` followed by the interval's level, e.g. "(99% CI)"."""
        if self.degenerate:
            return self.text(digits, unit)
        return f"{self.text(digits, unit)} ({100 * level:.3g}% CI)"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, level: float | None = None) -> "Interval":
        """The stored interval, or (with ``level``) one recomputed from the stored
        per-replication ``values`` at that level."""
        if level is not None:
            if "values" not in d:
                raise ValueError("this summary keeps no per-replication values")
            return cls.of(d["values"], level)
        return cls(*(math.nan if d[k] is None else d[k] for k in ("mean", "low", "high")),
                   int(d["n"]))


def event_rate(values, exposure: float, level: float = LEVEL, unit: str = "per slot",
               digits: int = 3) -> tuple[float, str]:
    """(upper end, text) for a rate of events measured in replications of ``exposure``
    slots each (``values``: the rate of each replication).

    With events seen, the Student-t interval at ``level``; with none at all, the exact
    Poisson upper bound at ``level`` over every slot (:func:`stability.intervals.
    poisson_upper`; the rule of three at 95%), since zero events give no interval.
    """
    from stability.intervals import poisson_upper

    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size and not x.any():
        slots = exposure * x.size
        bound = poisson_upper(0, slots, level)
        return bound, (f"0 events in {slots:.3g} slots (n={x.size}): rate <= {_g(bound, digits)} "
                       f"{unit} ({100 * level:.3g}% exact Poisson upper bound)")
    interval = Interval.of(x, level)
    return interval.high, interval.level_text(level, digits, unit)


def summary(values) -> dict:
    """The :data:`LEVEL` interval of ``values`` as a dict that also keeps the values (so a
    check can recompute it at another level)."""
    x = np.asarray(values, dtype=float)
    return dict(Interval.of(x).to_dict(), values=x.tolist())


def _g(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}g}"


fmt = _g


# ------------------------------------------------------------------------- verification
@dataclass(frozen=True)
class Check:
    """One row of VERIFICATION.md.

    experiment : experiment name.
    claim : the statement checked.
    source : "paper" (a claim of Dong & Cao), "theory" (a theorem or bound encoded in
        ``stability.theory``, possibly a reconstruction) or "ours" (beyond the paper).
    theory : the theoretical value (text).
    simulation : the simulated value with its interval (text).
    criterion : how the verdict is decided.
    verdict : PASS, FAIL or INCONCLUSIVE (the budget cannot decide).
    """

    experiment: str
    claim: str
    source: str
    theory: str
    simulation: str
    criterion: str
    verdict: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# ------------------------------------------------------------------------------ caching
def versions() -> dict:
    """Versions of everything that determines the numbers (and the git commit if known)."""
    import matplotlib
    import numba
    import scipy

    import stability

    info = {"stability": stability.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "numba": numba.__version__,
            "matplotlib": matplotlib.__version__, "platform": platform.platform()}
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0:
            info["git_commit"] = out.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                    "--untracked-files=no"], capture_output=True, text=True,
                                   timeout=10)
            info["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def jsonable(x):
    """Plain values for :func:`dumps` (numpy scalars and arrays converted, nan as None);
    infinities stay floats."""
    from stability.jsonvalues import plain

    if isinstance(x, Interval):
        return jsonable(x.to_dict())
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (float, np.floating)) and math.isinf(x):
        return float(x)
    return plain(x)


_INFINITY = re.compile(r'(?<=[\[:,\s])(-?)Infinity(?=[\],}\s])')


def dumps(x, **kwargs) -> str:
    """Strict JSON of the reproduction's results: nan as null and +-inf as the JSON
    numbers 1e999 and -1e999, which every JSON reader accepts as numbers and Python's
    (and JavaScript's) read back as infinities, so cached values round-trip."""
    text = json.dumps(jsonable(x), **kwargs)
    return _INFINITY.sub(lambda m: f"{m.group(1)}1e999", text)


def unjson(x):
    """Inverse of :func:`jsonable` for floats: None to nan stays None; the strings "inf" /
    "-inf" of older caches back to floats."""
    if isinstance(x, dict):
        return {k: unjson(v) for k, v in x.items()}
    if isinstance(x, list):
        return [unjson(v) for v in x]
    if x == "inf":
        return math.inf
    if x == "-inf":
        return -math.inf
    return x


def source_digest() -> str:
    """A hash of the source of the ``stability`` package (theory and kernels included) and
    of the experiments themselves, so that cached series, theory values and replays are
    recomputed when the code that makes them changes."""
    import stability

    digest = hashlib.sha256()
    for root in (Path(stability.__file__).resolve().parent, Path(__file__).resolve().parent):
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{root.name}/{path.relative_to(root)}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(params) -> str:
    """A short hash of parameters, the package version and its source naming cached
    artefacts (the SQLite stores are keyed by the sweep module itself)."""
    import stability

    text = dumps({"params": params, "version": stability.__version__,
                  "source": source_digest()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_results(ctx: Context, name: str, results: dict) -> Path:
    """``<cache>/<name>.json``: results plus mode, versions and the time written."""
    path = ctx.cache / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(results, experiment=name, mode=ctx.mode, versions=versions(),
                   written=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(dumps(payload, indent=1))  # keeps insertion order
    tmp.replace(path)
    return path


def read_results(cache: Path, name: str) -> dict | None:
    path = Path(cache) / f"{name}.json"
    if not path.is_file():
        return None
    return unjson(json.loads(path.read_text()))


def cached(ctx: Context, name: str, params: dict, compute):
    """``compute()`` (a dict of arrays) cached in ``<cache>/<name>.npz`` under the hash of
    ``params``: recomputed only when the parameters or the package version change."""
    path = ctx.cache / f"{name}.npz"
    key = fingerprint(params)
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            if str(data["_fingerprint"]) == key:
                return {k: data[k] for k in data.files if k != "_fingerprint"}
    out = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, _fingerprint=np.array(key), **out)
    tmp.replace(path)
    return out


def cached_json(ctx: Context, name: str, params: dict, compute):
    """Like :func:`cached` for JSON-able results (``<cache>/<name>.cache.json``)."""
    path = ctx.cache / f"{name}.cache.json"
    key = fingerprint(params)
    if path.is_file():
        data = json.loads(path.read_text())
        if data.get("_fingerprint") == key:
            return unjson(data["value"])
    value = jsonable(compute())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps({"_fingerprint": key, "value": value}))
    return unjson(value)


def geometric_quantile(p: float, q: float) -> int:
    """Smallest k with P(o <= k) >= q for o geometric with success probability p."""
    return int(math.ceil(math.log1p(-q) / math.log1p(-p)))


def critical_total_rate(workload, memory: int) -> float:
    """lambda* = M / E[w] as a total rate (requests per slot over all classes) for the
    class mix of ``workload`` (Prop. 3.2)."""
    return memory * workload.total_rate / workload.mean_kv_load()


def mean_decode(workload) -> float:
    """E[o] of the class mix (requests pick class k with probability lambda_k / lambda)."""
    return float(sum(c.rate * c.decode.mean() for c in workload.classes) / workload.total_rate)
