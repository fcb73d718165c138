"""The results store: one SQLite row per simulation run.

A row is keyed by a hash of everything that determines the run (workload and policy
specs, memory, slots, warm-up, engine, seed, package version), so a sweep that is run
again skips the runs it already holds.  Rows are written one transaction each, in WAL
mode, as they arrive: an interrupted sweep (Ctrl-C, a killed worker, SIGKILL of the
main process) keeps every finished row, never a half-written one, and a re-run neither
loses nor duplicates a row (``INSERT OR IGNORE`` on the primary key).

A file is only ever used if it carries this store's ``application_id`` and schema
version; anything else (another program's SQLite file, a text file, a damaged copy) is
refused with an error naming the file, and left untouched.

Reading: :func:`load` returns a dict of numpy columns (``pandas.DataFrame(load(db))``
works; pandas is not needed) and :func:`export_csv` writes them as CSV;
:mod:`stability.store.summary` groups runs by point with confidence intervals.

A policy is stored as its canonical spec (JSON text, ``policy``) and its kind, so a new
policy needs no new column; :func:`load` expands the spec into ``policy.<parameter>``
columns.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sqlite3
import sys
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from stability.metrics import Distribution, Metrics

__all__ = ["ResultStore", "flatten_metrics", "load", "export_csv", "METRIC_COLUMNS",
           "PARAM_COLUMNS", "POINT_COLUMNS", "SCHEMA_VERSION"]

APPLICATION_ID = 0x53544231  # "STB1" in the SQLite header: this file is a results store
_SQLITE_MAGIC = b"SQLite format 3\x00"

# Parameters of a run, as flat columns for plotting (the specs themselves are JSON).
PARAM_COLUMNS = {
    "params": "TEXT NOT NULL",  # canonical JSON of everything that determines the run
    "workload": "TEXT NOT NULL",  # canonical JSON of the workload spec
    "policy": "TEXT NOT NULL",  # canonical JSON of the policy spec (its kind and parameters)
    "world": "TEXT NOT NULL",  # canonical JSON of the world spec (eviction, requeue, blocks)
    "workload_kind": "TEXT NOT NULL",
    "rate": "REAL",  # the spec's rate (per class for paper-4.1), or NULL if given by load
    "load": "REAL",  # the spec's load (fraction of M / E[w]), or NULL if given by rate
    "prompt": "TEXT",
    "decode": "TEXT",
    "source": "TEXT",  # azure workloads: "trace" or "synthetic"
    "total_rate": "REAL",  # lambda = sum_k lambda_k simulated: per slot (per second, timed)
    "offered_load": "REAL",  # sum_k lambda_k E[w_k] / M (Prop. 3.2 needs <= 1)
    "num_classes": "INTEGER",
    "policy_kind": "TEXT NOT NULL",
    "memory": "INTEGER NOT NULL",
    "slots": "INTEGER NOT NULL",
    "warmup": "INTEGER NOT NULL",
    "engine": "TEXT NOT NULL",
    "replication": "INTEGER NOT NULL",
    "seed": "INTEGER NOT NULL",
    "root_seed": "INTEGER NOT NULL",
    "version": "TEXT NOT NULL",
}

# A point is a run up to its replication: what confidence intervals are grouped by.
POINT_COLUMNS = ("workload", "policy", "world", "memory", "slots", "warmup", "engine",
                 "version")


def _metric_columns() -> dict:
    """Every scalar of :class:`Metrics` except the per-class entries, as SQL columns."""
    cols = {}
    for f in dataclasses.fields(Metrics):
        if f.name in ("per_class", "seconds"):  # per class and in seconds: in the JSON
            continue
        if f.type in ("Distribution", Distribution):
            for g in dataclasses.fields(Distribution):
                cols[f"{f.name}_{g.name}"] = "INTEGER" if g.name == "count" else "REAL"
        else:
            cols[f.name] = "INTEGER" if f.type in ("int", int) else "REAL"
    cols["rejected"] = "INTEGER"  # stream engine: requests with l + o > M, never simulated
    return cols


METRIC_COLUMNS = _metric_columns()

_OTHER_COLUMNS = {
    "metrics": "TEXT NOT NULL",  # JSON of flatten_metrics(): every scalar, per class too
    "seconds": "REAL NOT NULL",  # wall time of the run in its worker
    "finished": "TEXT NOT NULL",  # ISO 8601 UTC time the row was written
}
COLUMNS = {"key": "TEXT PRIMARY KEY", **PARAM_COLUMNS, **METRIC_COLUMNS, **_OTHER_COLUMNS}
# PRAGMA user_version: derived from the column layout, so a store written before a metric
# was added or renamed is refused with a clear message rather than misread.
SCHEMA_VERSION = zlib.crc32(json.dumps(COLUMNS).encode()) & 0x7FFFFFFF

_SCHEMA = (
    f"PRAGMA application_id = {APPLICATION_ID};\n"
    f"PRAGMA user_version = {SCHEMA_VERSION};\n"
    "CREATE TABLE runs (\n  "
    + ",\n  ".join(f'"{name}" {decl}' for name, decl in COLUMNS.items())
    + "\n) WITHOUT ROWID;\n"
    "CREATE TABLE sweeps (\n"
    "  name TEXT NOT NULL, fingerprint TEXT NOT NULL, config TEXT NOT NULL,\n"
    "  version TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (name, fingerprint));\n"
)


def flatten_metrics(metrics: Metrics) -> dict:
    """Every scalar of ``metrics`` under a flat name: ``latency_p95``, ``class1_ttft_mean``.

    Integers stay ``int``, the rest become ``float`` (nan where undefined).
    """
    def scalar(value):
        if isinstance(value, (bool, np.bool_)):
            return int(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        return float(value)

    def walk(prefix: str, value, out: dict) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}_", v, out)
        elif value is not None:  # a timed run's seconds block, absent under a unit clock
            out[prefix[:-1]] = scalar(value)

    d = metrics.to_dict()
    per_class = d.pop("per_class")
    out: dict = {}
    walk("", d, out)
    for k in sorted(per_class):
        walk(f"class{k}_", per_class[k], out)
    return out


def _dumps(value) -> str:
    """Canonical JSON (sorted keys, no spaces); floats in shortest round-trip form."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------------------- files
def _refuse(path: Path, why: str) -> ValueError:
    return ValueError(f"{path}: {why}; refusing to use or modify it (a results store is "
                      "an SQLite file written by stability; choose another path)")


def _check_header(path: Path) -> None:
    """Reject, from its first 100 bytes and without opening it in SQLite, any file that is
    not one of our stores."""
    with open(path, "rb") as handle:
        head = handle.read(100)
    if not head:
        raise _refuse(path, "the file is empty, not a stability results store")
    if not head.startswith(_SQLITE_MAGIC):
        raise _refuse(path, "not an SQLite database (wrong file header)")
    if len(head) < 100:
        raise _refuse(path, "corrupt SQLite database (truncated header)")
    app_id = int.from_bytes(head[68:72], "big")
    if app_id != APPLICATION_ID:
        raise _refuse(path, f"an SQLite database of another program (application_id "
                            f"{app_id:#x}, a stability results store has {APPLICATION_ID:#x})")
    version = int.from_bytes(head[60:64], "big")
    if version != SCHEMA_VERSION:
        raise _refuse(path, f"a stability results store of schema version {version}; this "
                            f"version of stability reads version {SCHEMA_VERSION}")


def _unwritable(path: Path, err) -> ValueError:
    """A store that cannot be created or written where it is, as one line."""
    why = getattr(err, "strerror", None) or str(err)
    return ValueError(f"{path}: cannot write a results store there ({why}); choose a "
                      "writable place (--db PATH)")


def _why_unwritable(directory: Path) -> str:
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "Read-only file system"
    except (OSError, AttributeError):
        pass
    return "the directory is not writable"


def _create(path: Path) -> None:
    """Create an empty store at ``path`` atomically: built aside, then hard-linked into
    place, which fails rather than replace a file that appeared meanwhile.  A place that
    cannot be written is a ValueError naming it, and nothing is left behind."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(path, err) from None
    if not os.access(path.parent, os.W_OK):
        raise _unwritable(path, OSError(30, _why_unwritable(path.parent)))
    try:
        _build(path)
    except (OSError, sqlite3.OperationalError) as err:
        raise _unwritable(path, err) from None


def _build(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.creating")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript(_SCHEMA)
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: recorded in the header
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise _refuse(path, "the file appeared while the store was being created") from None
        except OSError:  # no hard links on this file system
            if path.exists():
                raise _refuse(path, "the file appeared while the store was being created") \
                    from None
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class ResultStore:
    """An open results store (SQLite, WAL mode); a context manager.

    Parameters
    ----------
    path : str or pathlib.Path
        The database file.
    create : bool
        Create the file if it does not exist (else a missing file is an error).
    readonly : bool
        Open for reading only (no checks that need writing).  A store on a read-only
        file system (or in a directory this process cannot write) is read in SQLite's
        immutable mode, unless its write-ahead log holds rows not yet checkpointed
        (then the error says to copy the store and its ``-wal`` file elsewhere).

    Only files that carry this store's header are opened; see the module docstring.
    """

    def __init__(self, path, create: bool = False, readonly: bool = False):
        self.path = Path(path)
        if not self.path.exists():
            if not create or readonly:
                raise FileNotFoundError(f"{self.path}: no such results store")
            _create(self.path)
        elif self.path.is_dir():
            raise _refuse(self.path, "a directory")
        _check_header(self.path)
        self.readonly = readonly
        if readonly:
            self._conn = self._open_readonly()
            return
        if not (os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)):
            raise ValueError(f"{self.path}: the results store is read-only here (it can be "
                             "read, e.g. with `stability results`, but not written); copy it "
                             "to a writable place to add runs")
        self._conn = self._connect("mode=rw")
        try:
            self._validate(readonly)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self, query: str):
        uri = self.path.resolve().as_uri() + "?" + query
        try:
            return sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
        except sqlite3.Error as err:
            raise _refuse(self.path, f"cannot be opened ({err})") from None

    def _open_readonly(self):
        """Read-only, or immutable where SQLite cannot create the shared-memory file a
        WAL reader needs (a read-only file system or directory)."""
        conn = self._connect("mode=ro")
        self._conn = conn
        try:
            self._validate(True)
            return conn
        except ValueError:
            conn.close()
            if os.access(self.path.parent, os.W_OK):
                raise
        wal = Path(f"{self.path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise ValueError(f"{self.path}: the store is on a read-only file system and its "
                             f"write-ahead log {wal.name} holds rows not yet merged into it; "
                             "copy both files to a writable place to read them")
        self._conn = self._connect("mode=ro&immutable=1")
        try:
            self._validate(True)
        except BaseException:
            self._conn.close()
            raise
        return self._conn

    def _validate(self, readonly: bool) -> None:
        conn = self._conn
        try:
            if not readonly:
                conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across process crashes
            # O(size of the file), small next to the sweep that wrote it
            problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise _refuse(self.path, f"corrupt database ({'; '.join(problems[:3])})")
            names = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
            sweep_names = [r[1] for r in conn.execute("PRAGMA table_info(sweeps)")]
        except sqlite3.OperationalError as err:  # cannot open or lock: not a damaged file
            raise ValueError(f"{self.path}: cannot be read ({err})") from None
        except sqlite3.DatabaseError as err:
            raise _refuse(self.path, f"corrupt database ({err})") from None
        missing = [c for c in ("key", *PARAM_COLUMNS, *_OTHER_COLUMNS) if c not in names]
        if missing or not sweep_names:
            raise _refuse(self.path, "a stability header but not its tables "
                                     f"(missing {missing or ['sweeps']})")
        self._columns = names

    # -- writing -----------------------------------------------------------------------
    def _writable(self) -> None:
        if self.readonly:
            raise ValueError(f"{self.path}: opened read-only; open it with readonly=False "
                             "to add runs")

    def add(self, row: dict) -> bool:
        """Insert one finished run in its own transaction; False if its key was present.

        ``row`` holds ``key``, the parameter columns, ``metrics`` (a flat dict, see
        :func:`flatten_metrics`), ``seconds``; metric columns are filled from ``metrics``.
        """
        self._writable()
        values = {name: row.get(name) for name in PARAM_COLUMNS}
        values["key"] = row["key"]
        metrics = row["metrics"]
        for name in METRIC_COLUMNS:
            values[name] = metrics.get(name)
        values["metrics"] = json.dumps(metrics, sort_keys=True)
        values["seconds"] = float(row["seconds"])
        values["finished"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        names = [n for n in values if n in self._columns]  # older stores may lack new metrics
        sql = (f"INSERT OR IGNORE INTO runs ({', '.join(f'{chr(34)}{n}{chr(34)}' for n in names)})"
               f" VALUES ({', '.join('?' * len(names))})")
        with self._transaction():
            cursor = self._conn.execute(sql, [values[n] for n in names])
        return cursor.rowcount == 1

    def record_sweep(self, name: str, fingerprint: str, config: dict, version: str) -> None:
        """Remember that sweep ``name`` with this configuration wrote to the store."""
        self._writable()
        with self._transaction():
            self._conn.execute(
                "INSERT OR IGNORE INTO sweeps VALUES (?, ?, ?, ?, ?)",
                (name, fingerprint, _dumps(config), version,
                 datetime.now(timezone.utc).isoformat(timespec="seconds")))

    def _transaction(self):
        conn = self._conn

        class _Tx:
            def __enter__(self):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind, value, tb):
                conn.execute("COMMIT" if kind is None else "ROLLBACK")
                return False

        return _Tx()

    # -- reading -----------------------------------------------------------------------
    def keys(self) -> set:
        """The keys of every stored run."""
        return {r[0] for r in self._conn.execute("SELECT key FROM runs")}

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def sweeps(self) -> list:
        """(name, fingerprint, config dict, version, created) of every recorded sweep."""
        rows = self._conn.execute("SELECT name, fingerprint, config, version, created "
                                  "FROM sweeps ORDER BY created, name")
        return [(n, f, json.loads(c), v, t) for n, f, c, v, t in rows]

    def load(self, expand: bool = True) -> dict:
        """All runs as a dict of numpy columns, ordered by point then replication.

        Integer columns are int64 (float64 with nan if some value is missing), real
        columns float64 (nan for missing or undefined), text columns object arrays.
        With ``expand``, every entry of the ``metrics`` JSON (per-class metrics
        included) also becomes a column.
        """
        order = ", ".join(f'"{c}"' for c in ("workload_kind", "workload", "policy_kind",
                                             "policy", "world", "memory", "slots", "warmup",
                                             "engine", "version", "replication", "key"))
        try:
            cursor = self._conn.execute(f"SELECT * FROM runs ORDER BY {order}")
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        except sqlite3.DatabaseError as err:
            raise _refuse(self.path, f"corrupt database ({err})") from None
        declared = {n: COLUMNS.get(n, "REAL") for n in names}
        out = {n: _column([r[i] for r in rows], declared[n]) for i, n in enumerate(names)}
        if expand and rows:
            blobs = [json.loads(m) for m in out["metrics"]]
            extra = sorted({k for b in blobs for k in b} - set(out))
            for name in extra:
                values = [b.get(name) for b in blobs]
                kind = "INTEGER" if all(isinstance(v, int) for v in values) else "REAL"
                out[name] = _column(values, kind)
            out.update(_expand_specs(out["policy"], "policy."))
        return out

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _expand_specs(texts, prefix: str) -> dict:
    """One column per parameter found in the JSON specs (missing: None / nan)."""
    specs = [json.loads(t) for t in texts]
    names = sorted({k for s in specs for k in s} - {"kind"})
    out = {}
    for name in names:
        values = [s.get(name) for s in specs]
        if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
               for v in values):
            out[prefix + name] = _column(values, "REAL")
        else:
            out[prefix + name] = _column([None if v is None else json.dumps(v)
                                          if isinstance(v, list) else v for v in values], "TEXT")
    return out


def _column(values: list, declared: str) -> np.ndarray:
    if declared.startswith("TEXT"):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    if declared.startswith("INTEGER") and all(v is not None for v in values):
        return np.array(values, dtype=np.int64)
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def load(path, expand: bool = True) -> dict:
    """The runs of the store at ``path`` as a dict of numpy columns (see
    :meth:`ResultStore.load`); ``pandas.DataFrame(load(path))`` makes a data frame."""
    with ResultStore(path, readonly=True) as store:
        return store.load(expand=expand)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def export_csv(path, out, expand: bool = True) -> int:
    """Write every run of the store at ``path`` to the CSV file ``out`` ("-": stdout).

    Empty cells are missing or undefined values; floats are written exactly (shortest
    round-trip form).  Returns the number of rows.
    """
    columns = load(path, expand=expand)
    names = [n for n in columns if n != "metrics"] if expand else list(columns)
    n = len(columns["key"]) if columns else 0
    try:
        handle = sys.stdout if str(out) == "-" else open(out, "w", newline="")
    except OSError as err:
        raise ValueError(f"{out}: cannot write the CSV file ({err.strerror or err})") from None
    try:
        writer = csv.writer(handle)
        writer.writerow(names)
        for i in range(n):
            writer.writerow([_cell(columns[c][i]) for c in names])
    finally:
        if handle is not sys.stdout:
            handle.close()
    return n


