"""The report: bench/results.md (or the path given), every issue-12 target as PASS/MISS with the
numbers it was judged on, then the tables behind them. A target that this run could not measure
is NOT MEASURED, never PASS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.concurrency import ConcurrencyResult, huge_pages_in_use
from bench.ingest import IngestResult
from bench.load import LoadReport
from bench.measure import EXACT_JUDGED_MAX_ROWS, ClassResult, LockResult

__all__ = ["Run", "TableRun", "Verdict", "render", "verdicts"]

RECALL_METHODS = ("search", "search_metadata", "search_collection")
TABLE_METHODS = (
    "search", "search_service", "exact", "exact_rows", "hnsw", "naive", "search_metadata",
    "search_collection", "hybrid_broad", "hybrid_narrow", "search_switched",
)  # fmt: skip


@dataclass(slots=True)
class TableRun:
    load: LoadReport
    classes: list[ClassResult]


@dataclass(slots=True)
class Run:
    scale: str
    header: dict[str, str]
    tables: list[TableRun]
    locks: list[LockResult] = field(default_factory=list)
    concurrency: list[ConcurrencyResult] = field(default_factory=list)
    ingest: IngestResult | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    target: str
    status: str  # PASS | MISS | NOT MEASURED
    detail: str


def _ok(flag: bool) -> str:
    return "PASS" if flag else "MISS"


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and not math.isnan(a) else float("nan")


def verdicts(run: Run) -> list[Verdict]:
    out: list[Verdict] = []
    for table in run.tables:
        size = f"{table.load.table_rows:,} rows"
        misses = []
        for c in table.classes:
            for method in RECALL_METHODS:
                mean, worst = c.recall(method)
                if not (mean >= 0.99 and worst >= 0.8):
                    misses.append(f"{c.label} {method} {mean:.3f}/{worst:.1f}")
        out.append(
            Verdict(
                f"recall@10 mean >= 0.99, no query < 0.8, every class and filter ({size})",
                _ok(not misses),
                "; ".join(misses) or "all classes",
            )
        )
        misses = []
        for c in table.classes:
            r = _ratio(c.p50("search"), c.p50("hnsw"))
            if not r <= 3:
                misses.append(f"{c.label}: {r:.1f}x HNSW")
            if c.rows <= EXACT_JUDGED_MAX_ROWS:
                e = _ratio(c.p50("search"), c.p50("exact"))
                if not e <= 1.5:
                    rows = _ratio(c.p50("search"), c.p50("exact_rows"))
                    misses.append(
                        f"{c.label}: {e:.2f}x exact"
                        + ("" if math.isnan(rows) else f" ({rows:.2f}x the same rows bare)")
                    )
        out.append(
            Verdict(
                f"p50 <= 3x unfiltered HNSW; <= 1.5x exact up to 1,000 rows ({size})",
                _ok(not misses),
                "; ".join(misses) or "all classes",
            )
        )
        ratios = [
            (c.label, _ratio(c.p50("search"), c.p50("search_service"))) for c in table.classes
        ]
        out.append(
            Verdict(
                f"RLS overhead <= 1.15x service_role ({size})",
                _ok(all(r <= 1.15 for _, r in ratios)),
                ", ".join(f"{label} {r:.2f}x" for label, r in ratios),
            )
        )
        ratios = [
            (f"{c.label} {kind}", _ratio(c.p50(f"hybrid_{kind}"), c.p50("search")))
            for c in table.classes
            for kind in ("broad", "narrow")
        ]
        out.append(
            Verdict(
                f"hybrid_search p50 <= 2x search_embeddings ({size})",
                _ok(all(r <= 2 for _, r in ratios)),
                ", ".join(f"{label} {r:.2f}x" for label, r in ratios),
            )
        )
    search = [c for c in run.concurrency if c.workload == "search"]
    if search:
        peak = max(c.throughput for c in search)
        judged = [c for c in search if c.clients in (8, 16, 32)]
        floor = [c for c in run.concurrency if c.workload == "hnsw"]
        floor_peak = max((c.throughput for c in floor), default=0.0)
        detail = (
            ", ".join(f"{c.clients}: {c.throughput / peak:.2f}x" for c in search)
            if peak
            else "no calls"
        )
        if floor_peak:
            detail += "; the floor (unfiltered HNSW, same driver) " + ", ".join(
                f"{c.clients}: {c.throughput / floor_peak:.2f}x" for c in floor
            )
        out.append(
            Verdict(
                "throughput at 8/16/32 clients >= 0.9x peak",
                "NOT MEASURED"
                if not judged or not peak
                else _ok(all(c.throughput >= 0.9 * peak for c in judged)),
                detail,
            )
        )
    if run.locks:
        out.append(
            Verdict(
                "a search call takes only fast-path relation locks (warm session)",
                _ok(all(lk.relation_locks == lk.fast_path for lk in run.locks)),
                ", ".join(
                    f"{lk.label} ({lk.route}) {lk.relation_locks}/{lk.fast_path}"
                    for lk in run.locks
                )
                + " (locks/fast path)",
            )
        )
    ing = run.ingest
    out.append(
        Verdict(
            "Ingestor >= 0.9x raw binary COPY into the indexed table",
            "NOT MEASURED" if ing is None else _ok(ing.ratio >= 0.9),
            "-"
            if ing is None
            else f"{ing.rows:,} rows, median of {len(ing.copy_seconds)} rounds: Ingestor "
            f"{ing.ingestor_rows_per_s:,.0f} rows/s, COPY {ing.copy_rows_per_s:,.0f} rows/s = "
            f"{ing.ratio:.2f}x (per round: "
            + ", ".join(f"{x:.2f}x" for x in ing.round_ratios)
            + ("; checkpoint before each run)" if ing.checkpointed else ")"),
        )
    )
    return out


def _fmt(x: float, digits: int = 1) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def _class_table(classes: Sequence[ClassResult]) -> list[str]:
    head = "| tenant rows | share | route | " + " | ".join(TABLE_METHODS) + " |"
    lines = [
        "p50 ms per method (recall@10 mean / worst query where measured):",
        "",
        head,
        "|" + "---:|" * 3 + "---:|" * len(TABLE_METHODS),
    ]
    for c in classes:
        cells = []
        for m in TABLE_METHODS:
            cell = _fmt(c.p50(m), 2)
            if m in c.recalls:
                mean, worst = c.recall(m)
                cell += f" ({mean:.3f}/{worst:.1f})"
            cells.append(cell)
        lines.append(f"| {c.rows:,} | {c.share:.2%} | {c.route} | " + " | ".join(cells) + " |")
    return lines


def render(run: Run) -> str:
    lines = [f"# Benchmark results: scale `{run.scale}`", ""]
    lines += [f"- {k}: {v}" for k, v in run.header.items()]
    lines += ["", "## Targets", "", "| target | verdict | numbers |", "|---|---|---|"]
    lines += [f"| {v.target} | {v.status} | {v.detail} |" for v in verdicts(run)]
    for table in run.tables:
        load = table.load
        lines += [
            "",
            f"## Table of {load.table_rows:,} chunks",
            "",
            f"- load (binary COPY, shared indexes dropped): {load.load_seconds:.1f} s; index "
            "rebuilds: "
            + (", ".join(f"{k} {v:.1f} s" for k, v in load.index_seconds.items()) or "none"),
            "- per-tenant indexes built by the automatic promotion: "
            + (
                ", ".join(
                    f"{k} rows {v:.1f} s"
                    + (f" (graph check: {load.graphs[k]})" if k in load.graphs else "")
                    for k, v in load.promoted.items()
                )
                or "none"
            ),
            "",
        ]
        lines += _class_table(table.classes)
    if run.locks or run.concurrency:
        lines += ["", "## Concurrency", ""]
    if run.locks:
        lines += [
            "Relation locks one search call as a viewer holds at its end: on the first call of a",
            "new session (every statement planned) and warm (the session's plans kept, as on a",
            "pooled connection), with how many of the warm ones the fast path took.",
            "",
            "| tenant | route | first call | warm | warm on the fast path |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {lk.label} | {lk.route} | {lk.cold_locks} | {lk.relation_locks} | {lk.fast_path} |"
            for lk in run.locks
        ]
        lines.append("")
    if run.concurrency:
        lines += _concurrency_table(run.concurrency)
    return "\n".join(lines) + "\n"


def _states(c: ConcurrencyResult) -> str:
    """The three most frequent states of the active backends, mean backends per sample."""
    top = sorted(c.states.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{state} {n:.1f}" for state, n in top) or "-"


def _machine(c: ConcurrencyResult) -> str:
    return f"kernel {100 * c.kernel:.0f}%, {c.faults:,.0f} faults/s, steal {100 * c.steal:.0f}%"


def _passes(c: ConcurrencyResult) -> str:
    return " / ".join(f"{t:.0f}" for t in c.rounds) or "-"


def _concurrency_table(results: Sequence[ConcurrencyResult]) -> list[str]:
    by = {(c.workload, c.clients): c for c in results}
    peaks = {
        w: max((c.throughput for c in results if c.workload == w), default=0.0)
        for w in ("search", "hnsw")
    }
    lines = [
        "pgbench (bench.concurrency): each level runs the floor (an unfiltered HNSW walk over the",
        "whole table as service_role) and search_embeddings as the tenants' viewers, same",
        "queries, weights and transaction shape; the warm-up (growing with the clients) is",
        "not counted. Several passes over the levels (ascending, then descending): each cell is",
        "the level's median pass, the passes' calls/s listed beside it. Active backends: mean",
        "per 50 ms sample, by wait event (`on CPU` when none). Machine, over that pass's measured",
        "window: the share of CPU time in the kernel, page faults per second, and steal (CPU",
        f"time the hypervisor took). Huge pages: {'in use' if huge_pages_in_use() else 'no'}.",
        "",
        "| clients | search calls/s | vs peak | passes | p50 ms | p99 ms | LockManager waits | "
        "active backends (search) | machine (search) | floor calls/s | vs peak | passes | "
        "floor p50 ms | floor p99 ms | machine (floor) |",
        "|---:|---:|---:|---|---:|---:|---:|---|---|---:|---:|---|---:|---:|---|",
    ]
    for clients in sorted({c.clients for c in results}):
        s, f = by.get(("search", clients)), by.get(("hnsw", clients))
        row = [str(clients)]
        if s is not None:
            row += [
                f"{s.throughput:.1f}",
                _fmt(_ratio(s.throughput, peaks["search"]), 2) + "x",
                _passes(s),
                _fmt(s.p50, 2),
                _fmt(s.p99, 2),
                f"{s.lock_waits:.2f} ({s.lock_samples} samples)",
                _states(s),
                _machine(s),
            ]
        else:
            row += ["-"] * 8
        if f is not None:
            row += [
                f"{f.throughput:.1f}",
                _fmt(_ratio(f.throughput, peaks["hnsw"]), 2) + "x",
                _passes(f),
                _fmt(f.p50, 2),
                _fmt(f.p99, 2),
                _machine(f),
            ]
        else:
            row += ["-"] * 6
        lines.append("| " + " | ".join(row) + " |")
    return lines
