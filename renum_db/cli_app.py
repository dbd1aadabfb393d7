"""The application commands of `renum-db`: tenant, user, ingest, search, doctor.

Registered into the main parser by `add_commands` (renum_db.cli), so the migration and deploy
commands stay where they are. Every command takes `--json` (one JSON document on stdout, for
scripts); without it, output is for people (rich tables and progress bars; messages on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from renum_db.db import Database, user_claims
from renum_db.errors import InvalidInput, RenumDBError

__all__ = ["add_commands"]

INGESTIBLE = (".txt", ".md", ".markdown")
DEFAULT_KNOWLEDGE_BASE = "Documentos"


def _out(args: argparse.Namespace, data: Any, human: Callable[[Console], None]) -> None:
    if args.json:
        print(json.dumps(data, default=str, ensure_ascii=False))
    else:
        human(Console())


def _err() -> Console:
    return Console(stderr=True)


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a uuid: {value!r}") from None


def _provider(args: argparse.Namespace) -> Any:
    from renum_db.embeddings import LexicalHashingEmbeddings, embedding_provider_from_env

    provider = embedding_provider_from_env()
    if isinstance(provider, LexicalHashingEmbeddings) and not args.json:
        _err().print(
            "[yellow]OPENAI_API_KEY is not set: using the offline lexical provider"
            f" ({provider.model}); results match shared words, not meaning.[/yellow]"
        )
    return provider


def _offline(provider: Any) -> bool:
    from renum_db.embeddings import LexicalHashingEmbeddings

    return isinstance(provider, LexicalHashingEmbeddings)


# --- tenant ---------------------------------------------------------------------------------


def _cmd_tenant(args: argparse.Namespace) -> int:
    from renum_db.admin import TenantAdmin
    from renum_db.repositories.tenancy import ClientRepository

    with Database.from_settings() as db:
        admin = TenantAdmin(db)
        if args.action == "create":
            client = admin.create_client(name=args.name)
            _out(args, _row(client), lambda c: print(client.id))
        elif args.action in ("suspend", "reactivate"):
            client_id = _uuid(args.name)
            if args.action == "suspend":
                client = admin.suspend_client(client_id=client_id)
            else:
                client = admin.reactivate_client(client_id=client_id)
            _out(args, _row(client), lambda c: c.print(f"{client.id} {client.status}"))
        else:
            with db.as_service_role() as conn:
                clients = ClientRepository(conn).list(limit=args.limit)
            table = Table("id", "name", "status", "created")
            for cl in clients:
                table.add_row(str(cl.id), cl.name, cl.status, f"{cl.created_at:%Y-%m-%d %H:%M}")
            _out(args, [_row(c) for c in clients], lambda c: c.print(table))
    return 0


def _row(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


# --- user -------------------------------------------------------------------------------------


def _cmd_user(args: argparse.Namespace) -> int:
    from renum_db.admin import TenantAdmin
    from renum_db.repositories.tenancy import UserRepository

    with Database.from_settings() as db:
        admin = TenantAdmin(db)
        if args.action == "create":
            if args.tenant is None or args.email is None:
                raise InvalidInput("user create needs --tenant and --email")
            user = admin.create_user(
                client_id=args.tenant, email=args.email, role=args.role, password=args.password
            )
            if not args.json and admin.provisioner == "local":
                _err().print(f"created locally in auth.users (no Supabase Auth): {user.email}")
            _out(args, _row(user), lambda c: print(user.id))
        elif args.action == "set-role":
            if args.email is None:
                raise InvalidInput("user set-role needs --email and --role")
            user = admin.change_role(user_id=admin.find_user(email=args.email).id, role=args.role)
            _out(args, _row(user), lambda c: c.print(f"{user.email}: {user.role}"))
        else:
            with db.as_service_role() as conn:
                users = UserRepository(conn).list(limit=args.limit, client_id=args.tenant)
            table = Table("id", "email", "role", "client")
            for u in users:
                table.add_row(str(u.id), u.email or "", u.role, str(u.client_id or ""))
            _out(args, [_row(u) for u in users], lambda c: c.print(table))
    return 0


# --- ingest -----------------------------------------------------------------------------------


def _collection(db: Database, user_id: UUID, kb_name: str, name: str) -> tuple[UUID, bool]:
    """The user's collection `name` in knowledge base `kb_name`, created if missing."""
    from renum_db.repositories import KnowledgeBaseRepository, KnowledgeCollectionRepository

    with db.as_user(user_id) as conn:
        kbs = KnowledgeBaseRepository(conn)
        kb = kbs.get_by_name(kb_name) or kbs.create(name=kb_name)
        collections = KnowledgeCollectionRepository(conn)
        existing = collections.get_by_name(kb.id, name)
        if existing is not None:
            return existing.id, False
        return collections.create(knowledge_base_id=kb.id, name=name).id, True


def _read(path: Path) -> str:
    if path.suffix.lower() not in INGESTIBLE:
        raise InvalidInput(f"{path}: only {', '.join(INGESTIBLE)} files can be ingested")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: {exc}") from None


def _cmd_ingest(args: argparse.Namespace) -> int:
    from renum_db.admin import TenantAdmin
    from renum_db.ingest import Ingestor, IngestProgress
    from renum_db.repositories import DocumentRepository

    texts = [(path, _read(path)) for path in args.files]  # every file checked before any write
    with Database.from_settings() as db:
        user = TenantAdmin(db).find_user(email=args.user)
        collection_id, created = _collection(db, user.id, args.knowledge_base, args.collection)
        provider = _provider(args)
        ingestor = Ingestor(db, provider)
        results: list[dict[str, Any]] = []
        console = _err()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=args.json or (not console.is_terminal and not args.progress),
        ) as progress:
            files = progress.add_task("files", total=len(texts))
            for path, text in texts:
                chunks = progress.add_task(f"  {path.name}", total=None)

                def report(
                    event: IngestProgress, task: Any = chunks, label: str = path.name
                ) -> None:
                    stage = {"writing": " (writing chunks)", "written": " (done)"}
                    progress.update(
                        task,
                        total=event.total,
                        completed=event.done,
                        description=f"  {label}{stage.get(event.stage, '')}",
                    )

                with db.as_user(user.id) as conn:
                    existing = DocumentRepository(conn).get_by_name(collection_id, path.name)
                result = ingestor.ingest_document(
                    claims=user_claims(user.id),
                    collection_id=collection_id,
                    document_id=existing.id if existing else None,  # re-ingest, or retry
                    name=path.name,
                    text=text,
                    file_type=path.suffix.lstrip(".").lower(),
                    progress=report,
                )
                progress.advance(files)
                results.append(
                    {
                        "file": str(path),
                        "document_id": str(result.document_id),
                        "reingested": existing is not None,
                        "chunks": result.chunks,
                        "status": result.status,
                        "timings": result.timings,
                    }
                )
    data = {
        "collection_id": str(collection_id),
        "collection_created": created,
        "provider": provider.model,
        "offline_provider": _offline(provider),
        "documents": results,
    }

    def human(c: Console) -> None:
        table = Table("file", "document", "chunks", "status")
        for r in results:
            table.add_row(r["file"], r["document_id"], str(r["chunks"]), r["status"])
        c.print(table)

    _out(args, data, human)
    return 0


# --- search -----------------------------------------------------------------------------------


def _cmd_search(args: argparse.Namespace) -> int:
    from renum_db.admin import TenantAdmin
    from renum_db.repositories import DocumentRepository
    from renum_db.search import Retrieval

    with Database.from_settings() as db:
        user = TenantAdmin(db).find_user(email=args.user)
        provider = _provider(args)
        with db.as_user(user.id) as conn:
            retrieval = Retrieval(conn, provider)
            hits: list[Any] = list(
                retrieval.hybrid_search(args.query, match_count=args.k)
                if args.hybrid
                else retrieval.search(args.query, match_count=args.k)
            )
            documents = DocumentRepository(conn)
            names: dict[UUID, str] = {}
            for doc_id in {h.document_id for h in hits}:
                doc = documents.get(doc_id)
                names[doc_id] = doc.name if doc else "?"
    rows = [
        {
            "rank": i,
            "document_id": str(h.document_id),
            "document": names[h.document_id],
            "chunk_index": h.chunk_index,
            "score": h.score if args.hybrid else h.similarity,
            "similarity": h.similarity,
            "content": h.content,
            "chunk_id": str(h.id),
        }
        for i, h in enumerate(hits, start=1)
    ]
    data = {
        "query": args.query,
        "hybrid": args.hybrid,
        "offline_provider": _offline(provider),
        "results": rows,
    }

    def human(c: Console) -> None:
        table = Table("#", "score", "document", "chunk", "content", title=f"“{args.query}”")
        for r in rows:
            snippet = " ".join(str(r["content"]).split())
            table.add_row(
                str(r["rank"]),
                f"{r['score']:.4f}" if r["score"] is not None else "",
                str(r["document"]),
                str(r["chunk_index"]),
                snippet[:120] + ("…" if len(snippet) > 120 else ""),
            )
        c.print(table if rows else "no results")

    _out(args, data, human)
    return 0


# --- doctor -----------------------------------------------------------------------------------


def _cmd_doctor(args: argparse.Namespace) -> int:
    from renum_db.doctor import run_checks

    try:
        db = Database.from_settings()
    except RenumDBError as exc:
        from renum_db.doctor import Check, Report

        report = Report([Check("connection", "fail", f"{type(exc).__name__}: {exc}")])
    else:
        with db:
            report = run_checks(db)
    colours = {"ok": "green", "warn": "yellow", "fail": "red"}

    def human(c: Console) -> None:
        table = Table("check", "status", "summary")
        for check in report.checks:
            colour = colours[check.status]
            table.add_row(check.name, f"[{colour}]{check.status}[/{colour}]", check.summary)
        c.print(table)
        c.print("healthy" if report.ok else "[red]problems found[/red]")

    _out(args, report.as_dict(), human)
    return 0 if report.ok else 1


# --- registration -----------------------------------------------------------------------------


def add_commands(sub: Any) -> None:
    """Add the application commands to the `renum-db` subparsers."""
    p = sub.add_parser("tenant", help="clients: create NAME (prints the id), list, suspend ID")
    p.add_argument("action", choices=["create", "list", "suspend", "reactivate"])
    p.add_argument("name", nargs="?", help="client name (create) or id (suspend, reactivate)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_checked(_cmd_tenant, lambda a: a.action == "list" or bool(a.name)))

    p = sub.add_parser("user", help="users: create (prints the id), set-role, list")
    p.add_argument("action", choices=["create", "set-role", "list"])
    p.add_argument("--tenant", type=_uuid, help="client id")
    p.add_argument("--email")
    p.add_argument("--role", choices=["viewer", "member", "admin"], default="viewer")
    p.add_argument("--password", help="optional password (local users only sign in with one)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_user)

    p = sub.add_parser(
        "ingest", help="ingest .txt/.md files as a user into a collection (created if missing)"
    )
    p.add_argument("--user", required=True, help="the user's email")
    p.add_argument("--collection", required=True, help="collection name")
    p.add_argument(
        "--knowledge-base",
        default=DEFAULT_KNOWLEDGE_BASE,
        help=f"knowledge base name (default {DEFAULT_KNOWLEDGE_BASE!r}, created if missing)",
    )
    p.add_argument("--progress", action="store_true", help="progress bars even without a tty")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("search", help="search a user's knowledge (table of chunks)")
    p.add_argument("--user", required=True, help="the user's email")
    p.add_argument("query")
    p.add_argument("--hybrid", action="store_true", help="full text + semantic (RRF)")
    p.add_argument("-k", type=int, default=10, help="how many results (10)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("doctor", help="health report; exit 1 on problems")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_doctor)


def _checked(
    cmd: Callable[[argparse.Namespace], int], valid: Callable[[argparse.Namespace], bool]
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        if not valid(args):
            print(f"renum-db {args.command}: a name or id is required", file=sys.stderr)
            return 2
        return cmd(args)

    return run
