"""The benchmark package runs end to end at its smoke scale (a few hundred rows, seconds) on the
test server: loading, automatic promotion, every measured method, the growth probe, the
concurrency sweep and the report. Timings are not asserted (benchmarks measure, tests check);
what is checked is that every search route is exercised, that the exact and promoted routes
answer exactly, and that the report judges every target."""

from __future__ import annotations

import uuid

import pytest

from bench.concurrency import ConcurrencyResult, merge_rounds, warm_seconds_for
from bench.config import SCALES
from bench.measure import EXACT_JUDGED_MAX_ROWS
from bench.report import Run, render, verdicts
from bench.run import run


@pytest.fixture(scope="module")
def smoke(admin_url: str, template_url: str) -> Run:
    return run(admin_url, SCALES["smoke"], db_name=f"bench_smoke_{uuid.uuid4().hex[:8]}")


def test_the_smoke_run_routes_small_tenants_exactly_mid_ones_to_their_index_big_to_shared(
    smoke: Run,
) -> None:
    routes = {c.label: c.route for c in smoke.tables[0].classes}
    assert routes == {"big": "shared_index", "10": "exact", "40": "exact", "80": "tenant_index"}


def test_the_exact_and_tenant_index_routes_answer_exactly_at_smoke_scale(smoke: Run) -> None:
    for table in smoke.tables:
        for c in table.classes:
            if c.route in ("exact", "tenant_index"):
                assert c.recall("search") == (1.0, 1.0), (table.load.table_rows, c.label)


def test_the_whole_rows_floor_ranks_as_the_bare_scan_for_tenants_it_judges(smoke: Run) -> None:
    """The timed floors (a generic plan each) return the truth: the bare scan for every tenant,
    and the floor returning whole rows (chunk, document, collection joined) for every tenant of
    at most 1,000 rows."""
    for table in smoke.tables:
        for c in table.classes:
            # the smoke scale's tenants are all judged
            assert c.rows <= EXACT_JUDGED_MAX_ROWS, c.label
            assert c.recall("exact") == (1.0, 1.0), (table.load.table_rows, c.label)
            assert c.recall("exact_rows") == (1.0, 1.0), (table.load.table_rows, c.label)
            assert len(c.latencies["exact_rows"]) == len(c.latencies["exact"]), c.label


def test_the_growth_probe_doubles_the_table(smoke: Run) -> None:
    assert [t.load.table_rows for t in smoke.tables] == [400, 800]


def test_the_report_judges_every_target(smoke: Run) -> None:
    statuses = {v.target: v.status for v in verdicts(smoke)}
    assert len(statuses) == 4 * 2 + 3
    assert set(statuses.values()) <= {"PASS", "MISS", "NOT MEASURED"}
    text = render(smoke)
    assert "## Targets" in text
    assert all(target in text for target in statuses)


def test_the_concurrency_sweep_runs_the_floor_and_search_at_every_level(smoke: Run) -> None:
    """pgbench ran both workloads at every client count and their transactions were counted
    (a failing statement in a script makes pgbench exit non-zero, which fails the run)."""
    levels = SCALES["smoke"].concurrency
    seen = {(c.workload, c.clients): c for c in smoke.concurrency}
    assert set(seen) == {(w, n) for w in ("hnsw", "search") for n in levels}
    for c in smoke.concurrency:
        assert c.calls > 0, c
        assert c.seconds > 0, c
        assert c.p50 <= c.p99, c
        assert len(c.rounds) == SCALES["smoke"].concurrency_rounds, c  # one level, every pass
        assert sorted(c.rounds)[(len(c.rounds) - 1) // 2] == c.throughput, c  # the median pass
        assert 0 <= c.steal <= 1, c
        assert 0 <= c.kernel <= 1, c
        assert c.faults >= 0, c
    text = render(smoke)
    assert "| clients | search calls/s |" in text


def test_each_level_reports_its_median_pass() -> None:
    def level(clients: int, calls: int, p50: float) -> ConcurrencyResult:
        return ConcurrencyResult("search", clients, calls, 10.0, p50, p50 * 2, 0.0, 1)

    merged = merge_rounds(
        [level(8, 500, 1.0), level(16, 90, 9.0), level(8, 100, 5.0), level(8, 300, 3.0)]
    )
    by = {c.clients: c for c in merged}
    assert by[8].throughput == 30.0  # 50, 10 and 30 calls/s: the median pass, with its latencies
    assert by[8].p50 == 3.0
    assert by[8].rounds == (50.0, 10.0, 30.0)
    assert by[16].rounds == (9.0,)


def test_the_warm_up_grows_with_the_clients() -> None:
    full = SCALES["full"]
    assert warm_seconds_for(full, 1) < warm_seconds_for(full, 32)
    assert warm_seconds_for(full, 32) >= 40  # fresh backends faulting in shared_buffers
