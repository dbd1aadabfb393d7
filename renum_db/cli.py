"""`renum-db`: the project's command line (migrations, the embedded server, the sql/ sources)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, overload

from renum_db import __version__, migrations, sqlsource
from renum_db.config import load_settings
from renum_db.embedded import server_for
from renum_db.errors import ConfigurationError, RenumDBError

__all__ = ["main"]


def _cmd_migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    target = migrations.resolve_target(settings)
    where = f"embedded PostgreSQL {settings.pg_version}" if target.embedded else "DATABASE_URL"
    applied = migrations.apply(target.url, shim=settings.shim, target=args.target)
    for mid in applied:
        print(f"applied {mid}")
    states = migrations.status(target.url)
    pending = [s.id for s in states if not s.applied]
    print(f"{len(states) - len(pending)}/{len(states)} migrations applied on {where}")
    return 0 if not pending or args.target else 1


def _confirm_rollback(plan: migrations.RollbackPlan) -> bool:
    """Interactive confirmation: the operator types the database name."""
    print(f"About to {plan.describe()}.", file=sys.stderr)
    try:
        answer = input(f"Type the database name ({plan.database}) to confirm: ")
    except EOFError:
        return False
    return answer.strip() == plan.database


def _cmd_rollback(args: argparse.Namespace) -> int:
    target = migrations.resolve_target()
    count = None if args.all else args.count
    confirm: Callable[[migrations.RollbackPlan], bool] | None = None
    if args.yes:
        confirm = _assume_yes
    elif sys.stdin.isatty():
        confirm = _confirm_rollback
    for mid in migrations.rollback(target.url, count=count, confirm=confirm):
        print(f"rolled back {mid}")
    return 0


def _assume_yes(plan: migrations.RollbackPlan) -> bool:
    print(f"--yes: {plan.describe()}", file=sys.stderr)
    return True


def _cmd_status(_: argparse.Namespace) -> int:
    target = migrations.resolve_target()
    for state in migrations.status(target.url):
        print(f"{'applied' if state.applied else 'pending'}  {state.id}")
    return 0


def _cmd_db(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.database_url and args.action != "down":
        print(
            settings.database_url
            if args.action == "url"
            else "using DATABASE_URL; nothing to start"
        )
        return 0
    server = server_for(settings.data_dir, settings.pg_version)
    if args.action == "up":
        print(f"embedded PostgreSQL {settings.pg_version} running: {server.url()}")
    elif args.action == "url":
        # Never starts a server: print the URL of a running one, or say where one would be.
        url = server.running_url()
        if url is None:
            print(
                f"no embedded PostgreSQL {settings.pg_version} runs on {server.pgdata}; "
                "`renum-db db up` (or any command that needs it) starts one there",
                file=sys.stderr,
            )
            return 1
        print(url)
    else:
        print("stopped" if server.stop() else "not running")
    return 0


def _cmd_sql(args: argparse.Namespace) -> int:
    root = migrations.project_root()
    if args.action == "check":
        problems = sqlsource.check(root)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(
            "sql/ sources and migrations agree" if not problems else f"{len(problems)} problem(s)"
        )
        return 1 if problems else 0
    if not args.files:
        print("renum-db: sql sync needs the migration file(s) to refresh", file=sys.stderr)
        return 2
    changed = [str(p) for p in args.files if sqlsource.sync_file(root, p)]
    print("\n".join(f"updated {c}" for c in changed) or "nothing to update")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    import difflib
    from pathlib import Path

    from renum_db import schema

    target = migrations.resolve_target()
    text = schema.fresh_dump(target.url)
    if args.check:
        committed = Path(args.check).read_text(encoding="utf-8")
        if committed == text:
            print(f"{args.check} matches the migrated schema")
            return 0
        diff = difflib.unified_diff(
            committed.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=str(args.check),
            tofile="migrated",
        )
        sys.stdout.writelines(diff)
        print(f"{args.check} differs from the migrated schema: run `make schema`", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_credentials(args: argparse.Namespace) -> int:
    from renum_db import credentials
    from renum_db.db import Database

    if args.action == "generate-key":
        print(credentials.CredentialKeys.generate())
        return 0
    keys = credentials.CredentialKeys.from_env()
    with Database.from_settings() as db:
        if args.action == "rotate":
            report = credentials.rotate_credentials(db, keys, batch_size=args.batch_size)
            print(
                f"{report.examined} credential(s) examined in {report.batches} batch(es): "
                f"{report.rotated} re-encrypted, {report.already_current} already current, "
                f"{len(report.undecryptable)} undecryptable"
            )
            bad = report.undecryptable
        else:
            usage = credentials.inspect_credentials(db, keys, batch_size=args.batch_size)
            for index, count in enumerate(usage.per_key):
                print(f"key {index + 1}{' (primary)' if index == 0 else ''}: {count} credential(s)")
            print(
                "old keys can be removed"
                if usage.old_keys_removable
                else "old keys are still needed (run `renum-db credentials rotate`)"
            )
            bad = list(usage.undecryptable)
            if not bad and not usage.old_keys_removable:
                return 1
    for ident in bad:
        print(f"undecryptable under every configured key: {ident}", file=sys.stderr)
    return 1 if bad else 0


def _cmd_mcp(args: argparse.Namespace) -> int:
    """`renum-db mcp`: the MCP server for a tenant's agents (docs/mcp.md). Needs the `mcp` extra."""
    import logging
    from uuid import UUID

    try:
        from renum_db.mcp.executor import Limits
        from renum_db.mcp.server import ServeOptions, serve
    except ImportError as exc:
        raise ConfigurationError(
            f"the MCP server needs the `mcp` extra (pip install 'renum-db[mcp]'): {exc}"
        ) from None
    # Audit records: JSON lines to the file, or to stderr (stdout is the stdio protocol).
    handler: logging.Handler = (
        logging.FileHandler(args.audit_log, encoding="utf-8")
        if args.audit_log
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit = logging.getLogger("renum_db.mcp.audit")
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    audit.propagate = False
    try:
        options = ServeOptions(
            user=args.user,
            http=args.http,
            host=args.host,
            port=args.port,
            agent_id=UUID(args.agent) if args.agent else None,
            execution_id=UUID(args.execution) if args.execution else None,
            audit_table=args.audit_table,
            public_url=args.public_url,
            limits=Limits(
                statement_timeout_ms=args.statement_timeout_ms,
                max_rows=args.max_rows,
                max_chars=args.max_result_chars,
            ),
        )
    except ValueError as exc:
        raise ConfigurationError(f"--agent and --execution must be uuids ({exc})") from None
    serve(options)
    return 0


# --- tenant: per-tenant HNSW indexes (issue 12; docs/retrieval.md) ---------------------------


def _cmd_tenant(args: argparse.Namespace) -> int:
    import uuid

    import psycopg

    from renum_db import tenant_indexes
    from renum_db.errors import wrap_errors

    target = migrations.resolve_target()
    with wrap_errors(), psycopg.connect(target.url, autocommit=True) as conn:
        if args.action == "status":
            rows = tenant_indexes.status(conn)
            print(
                f"{'client_id':36}  {'chunks':>9}  {'share':>6}  {'route':23}  state      "
                "graphs  advice"
            )
            for r in rows:
                state = (r.state or "-") + ("" if r.index_valid in (None, True) else " (invalid)")
                graphs = (r.index_valid is not None) + (r.second_index_name is not None)
                print(
                    f"{r.client_id!s:36}  {r.chunk_rows:>9}  {r.share:>6.1%}  {r.route:23}  "
                    f"{state:9}  {graphs:>6}  {r.advice or ''}"
                )
            return 0
        if args.action == "promote" and args.auto:
            done = tenant_indexes.promote_due(
                conn, m=args.m, ef_construction=args.ef_construction, on_step=print
            )
            print(f"{len(done)} tenant(s) promoted")
            return 0
        if args.action == "demote" and args.auto:
            gone = tenant_indexes.demote_due(conn, on_step=print)
            print(f"{len(gone)} tenant(s) demoted")
            return 0
        if args.client_id is None:
            raise ValueError(f"tenant-index {args.action} needs a client id (or --auto)")
        client_id = uuid.UUID(args.client_id)
        if args.action == "check":
            if tenant_indexes.build_settings(conn, client_id) is None:
                raise ValueError(f"client {client_id} has no per-tenant index to check")
            check = tenant_indexes.check_graph(conn, client_id, rows=args.rows)
            print(f"{tenant_indexes.index_name_for(client_id)}: {check}")
            return 0 if check.reachable >= tenant_indexes.MIN_REACHABLE else 1
        if args.action == "promote":
            tenant_indexes.promote(
                conn, client_id, m=args.m, ef_construction=args.ef_construction, on_step=print
            )
            return 0
        if not tenant_indexes.demote(conn, client_id, on_step=print):
            print(f"client {client_id} had no per-tenant index")
        return 0


def _add_tenant_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tenant-index",
        help="per-tenant HNSW indexes: status, promote CLIENT_ID|--auto, demote CLIENT_ID|--auto, "
        "check CLIENT_ID",
    )
    p.add_argument("action", choices=["status", "promote", "demote", "check"])
    p.add_argument("client_id", nargs="?", help="the client (promote, demote, check)")
    p.add_argument(
        "--rows",
        type=int,
        default=1000,
        help="check: chunks to probe, picked at random (1000); exit 1 under 99.5%% found",
    )
    p.add_argument(
        "--auto",
        action="store_true",
        help="promote (or demote) every client status advises to, and resume stopped ones",
    )
    p.add_argument("--m", type=int, default=16, help="HNSW m of a new index (16)")
    p.add_argument(
        "--ef-construction", type=int, default=128, help="HNSW ef_construction of a new index (128)"
    )
    p.set_defaults(func=_cmd_tenant)


# --- bulk-load: the bulk-load procedure as one command (issue 12; docs/operations.md) ----------


class _ProgressBar:
    """The bulk load's progress on stderr: one bar per stage, redrawn in place on a terminal;
    elsewhere (a log file, CI) one line per stage change, per 10% of the documents and per
    index phase, so the log stays short."""

    width = 30

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._last = ""
        self._key: tuple[str, str, int] | None = None

    def __call__(self, event: Any) -> None:
        if event.stage == "load":
            count = f"{event.done}/{event.total} documents, {event.chunks} chunks"
            head = event.stage
        else:
            count = f"{event.done:,}/{event.total:,} {event.unit}".rstrip() if event.total else ""
            head = event.stage
        fraction = event.done / event.total if event.total else 0.0
        filled = int(self.width * fraction)
        bar = f"[{'#' * filled}{'.' * (self.width - filled)}]"
        line = " ".join(p for p in (f"{head:8s}", bar, count, event.detail) if p)
        if self.tty:
            pad = " " * max(0, len(self._last) - len(line))
            end = "\n" if self._stage_done(event) else ""
            sys.stderr.write(f"\r{line}{pad}{end}")
            self._last = "" if end else line
        else:
            detail = "" if event.stage == "load" else event.detail  # not every chunk batch
            key = (event.stage, detail, int(fraction * 10))
            if key != self._key or self._stage_done(event):
                sys.stderr.write(line + "\n")
            self._key = key
        sys.stderr.flush()

    @staticmethod
    def _stage_done(event: Any) -> bool:
        return (
            bool(event.total)
            and event.done == event.total
            and not (event.stage == "load" and event.detail)
            and (event.stage != "index" or event.detail.endswith(": built"))
        )


class _TextFiles(Sequence[Any]):
    """The files as DocumentInputs, each read only when the load reaches it."""

    def __init__(self, paths: Sequence[Any], collection_id: Any) -> None:
        self._paths = list(paths)
        self._collection = collection_id

    def __len__(self) -> int:
        return len(self._paths)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        from renum_db.ingest import DocumentInput

        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        path = self._paths[index]
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {path} as UTF-8 text: {exc}") from None
        return DocumentInput(collection_id=self._collection, name=path.name, text=text)


def _cmd_bulk_load(args: argparse.Namespace) -> int:
    import uuid

    from renum_db.bulk_load import bulk_load
    from renum_db.embeddings import embedding_provider_from_env

    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:  # before any index is dropped
        raise ValueError(f"not a file: {', '.join(missing)}")
    report = bulk_load(
        migrations.resolve_target().url,
        _TextFiles(args.files, uuid.UUID(args.collection_id)),
        client_id=uuid.UUID(args.client_id),
        embedder=embedding_provider_from_env(),
        chunk_size=args.chunk_size,
        overlap=args.overlap,
        drop_indexes=not args.keep_indexes,
        maintenance_work_mem=args.maintenance_work_mem,
        progress=_ProgressBar(),
    )
    print(
        f"{report.documents} document(s), {report.chunks} chunk(s) in {report.seconds:.1f} s; "
        f"indexes rebuilt: {', '.join(report.rebuilt) or 'none'}; "
        f"tenants promoted: {len(report.promoted)}"
    )
    return 0


def _add_bulk_load_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pathlib import Path

    p = sub.add_parser(
        "bulk-load",
        help="load text files as documents of one tenant, shared indexes dropped and rebuilt",
    )
    p.add_argument("--client-id", required=True, help="the tenant")
    p.add_argument("--collection-id", required=True, help="the collection of every document")
    p.add_argument("--chunk-size", type=int, default=1000, help="characters per chunk (1000)")
    p.add_argument("--overlap", type=int, default=200, help="characters of overlap (200)")
    p.add_argument("--keep-indexes", action="store_true", help="load into the live, indexed table")
    p.add_argument(
        "--maintenance-work-mem",
        help="maintenance_work_mem for the index rebuild, e.g. 2GB (must fit in /dev/shm for a"
        " parallel build; default: the server's)",
    )
    p.add_argument("files", nargs="+", type=Path, help="UTF-8 text files, one document each")
    p.set_defaults(func=_cmd_bulk_load)


def build_parser() -> argparse.ArgumentParser:
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="renum-db", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is done")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="apply pending migrations (shim first on local targets)")
    p.add_argument("--target", help="stop after this migration id")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("rollback", help="roll back applied migrations")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--count", type=int, default=1, help="how many (default 1)")
    g.add_argument("--all", action="store_true", help="roll back every migration")
    p.add_argument(
        "--yes",
        action="store_true",
        help="confirm a rollback over tenant data without a prompt (required when not a terminal)",
    )
    p.set_defaults(func=_cmd_rollback)

    p = sub.add_parser("status", help="list migrations and whether each is applied")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("db", help="the embedded server: up, down, url")
    p.add_argument("action", choices=["up", "down", "url"])
    p.set_defaults(func=_cmd_db)

    p = sub.add_parser("sql", help="check or sync the sql/ copies embedded in migrations")
    p.add_argument("action", choices=["check", "sync"])
    p.add_argument("files", nargs="*", type=Path, help="migrations to sync (sync only)")
    p.set_defaults(func=_cmd_sql)

    p = sub.add_parser(
        "schema",
        help="pg_dump --schema-only of a throwaway database migrated on the target server "
        "(what schema.sql holds)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("-o", "--output", help="write the dump to this file (make schema)")
    g.add_argument("--check", metavar="FILE", help="exit 1 with a diff if FILE differs")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser(
        "credentials",
        help="API credentials: rotate (re-encrypt under the first ENCRYPTION_KEY key), "
        "check (rows per key), generate-key",
    )
    p.add_argument("action", choices=["rotate", "check", "generate-key"])
    p.add_argument("--batch-size", type=int, default=500, help="rows per transaction (500)")
    p.set_defaults(func=_cmd_credentials)

    p = sub.add_parser(
        "mcp",
        help="MCP server giving one tenant's agents read-only access (stdio --user, or --http)",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="stdio: act as this user (email or id)")
    who.add_argument(
        "--http",
        action="store_true",
        help="streamable HTTP: each request's Supabase JWT (SUPABASE_JWT_SECRET) picks the user",
    )
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="HTTP port (8765)")
    p.add_argument(
        "--public-url", help="HTTP: the endpoint's public URL, for the OAuth resource metadata"
    )
    p.add_argument("--agent", help="record search usage for this agent id")
    p.add_argument("--execution", help="and this agent execution id")
    p.add_argument("--audit-log", help="append the audit records (JSON lines) to this file")
    p.add_argument(
        "--audit-table", action="store_true", help="also write public.mcp_audit_log rows"
    )
    p.add_argument("--statement-timeout-ms", type=int, default=5000, help="per call (5000)")
    p.add_argument("--max-rows", type=int, default=500, help="rows per query result (500)")
    p.add_argument(
        "--max-result-chars", type=int, default=256_000, help="JSON size per result (256000)"
    )
    p.set_defaults(func=_cmd_mcp)
    from renum_db.cli_app import add_commands

    add_commands(sub)  # tenant, user, ingest, search, doctor
    _add_tenant_parser(sub)
    _add_bulk_load_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from renum_db.observability import configure_logging

    configure_logging(verbose=args.verbose)  # RENUM_LOG_FORMAT=json: one JSON object per line
    try:
        return int(args.func(args))
    except (RenumDBError, ValueError) as exc:
        print(f"renum-db: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
