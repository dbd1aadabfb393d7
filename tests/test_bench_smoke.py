"""The benchmark package runs end to end at its smoke scale (a few hundred rows, seconds) on the
test server: loading, automatic promotion, every measured method, the growth probe, the
concurrency sweep and the report. Timings are not asserted (benchmarks measure, tests check);
what is checked is that every search route is exercised, that the exact and promoted routes
answer exactly, and that the report judges every target."""

from __future__ import annotations

import uuid

import pytest

from bench.config import SCALES
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
    text = render(smoke)
    assert "| clients | search calls/s |" in text
