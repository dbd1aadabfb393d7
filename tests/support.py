"""Shared test helpers: URLs, databases copied from the template, the seeded world, outcomes."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from pytest_postgresql.janitor import DatabaseJanitor

import renum_db.db
from renum_db.db import user_claims
from renum_db.embedded import admin_url_for
from renum_db.errors import RenumDBError

# A custom PostgREST role as Supabase documents them: inherits authenticated, granted to
# authenticator. Nothing in sql/ may treat it as anything but a user.
CUSTOM_API_ROLE = "renum_custom_api"


def create_custom_api_role(url: str) -> None:
    """Create CUSTOM_API_ROLE (cluster-wide, once per run) as the migrating role would: it needs
    CREATEROLE and ADMIN on authenticated, which hosted Supabase's postgres has."""
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_catalog.pg_roles where rolname = %s", (CUSTOM_API_ROLE,)
        ).fetchone()
        if exists:
            return
        role = sql.Identifier(CUSTOM_API_ROLE)
        conn.execute(sql.SQL("create role {} nologin inherit").format(role))
        conn.execute(sql.SQL("grant authenticated to {}").format(role))
        conn.execute(sql.SQL("grant {} to authenticator").format(role))


# The database role every signed-in user's request runs as in this run.
USER_ROLE = (
    CUSTOM_API_ROLE
    if os.environ.get("RENUM_TEST_API_ROLE", "authenticated") == "custom"
    else "authenticated"
)


def install_api_role_switch() -> None:
    """With RENUM_TEST_API_ROLE=custom, every request made through renum_db.db.act_as with the
    role `authenticated` runs as CUSTOM_API_ROLE instead, so the whole suite proves the custom
    role gets exactly what `authenticated` gets. Installed by conftest before any test module
    imports act_as."""
    if os.environ.get("RENUM_TEST_API_ROLE", "authenticated") != "custom":
        return
    original = renum_db.db.act_as
    if getattr(original, "_switched", False):
        return

    @contextmanager
    def switched(conn: psycopg.Connection[Any], claims: Any) -> Iterator[psycopg.Connection[Any]]:
        if claims and claims.get("role") == "authenticated":
            claims = {**claims, "role": CUSTOM_API_ROLE}
        with original(conn, claims) as c:
            yield c

    switched._switched = True  # type: ignore[attr-defined]
    renum_db.db.act_as = switched


def url_for(base_url: str, dbname: str) -> str:
    """`base_url` with its database replaced (the embedded URL puts the socket in the query)."""
    head, sep, query = base_url.partition("?")
    prefix = head.rsplit("/", 1)[0]
    return f"{prefix}/{dbname}{sep}{query}"


def superuser_url_for(url: str) -> str:
    """The same database as the embedded cluster's superuser supabase_admin (the shim's role)."""
    admin = admin_url_for(url)
    assert admin is not None, f"not an embedded hosted-shaped cluster: {url}"
    return admin


class _Janitor(DatabaseJanitor):
    """Terminates non-superuser client sessions only. An autovacuum worker on the template
    (likely right after the migrations) cannot be terminated by a non-superuser (42501), and need
    not be: CREATE DATABASE ... TEMPLATE and DROP DATABASE stop autovacuum workers themselves.
    Neither can a superuser's session (a test that applied the shim as supabase_admin and whose
    backend is still exiting after the client closed); DROP DATABASE waits up to 5 s for such
    sessions to go, which they do."""

    @staticmethod
    def _terminate_connection(cur: Any, dbname: str) -> None:
        cur.execute(
            "select pg_catalog.pg_terminate_backend(a.pid) from pg_catalog.pg_stat_activity as a "
            "join pg_catalog.pg_roles as r on r.oid = a.usesysid "
            "where a.datname = %s and a.backend_type = 'client backend' and not r.rolsuper "
            "and a.pid <> pg_catalog.pg_backend_pid()",
            (dbname,),
        )


def janitor(
    admin_url: str, name: str, *, template: str | None = None, as_template: bool = False
) -> DatabaseJanitor:
    """pytest-postgresql's DatabaseJanitor for database `name` on the server of `admin_url`,
    acting as that URL's role (the hosted-shaped, non-superuser postgres: CREATEDB suffices)."""
    info = conninfo_to_dict(admin_url)
    return _Janitor(
        user=str(info.get("user") or "postgres"),
        host=str(info.get("host") or ""),
        port=int(info.get("port") or 5432),
        password=None if info.get("password") in (None, "") else str(info["password"]),
        dbname=name,
        template_dbname=template,
        maintenance_dbname=str(info.get("dbname") or "postgres"),
        as_template=as_template,
    )


def create_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """Create `name` (a copy of `template`, if given), dropping a leftover of that name first."""
    jan = janitor(admin_url, name, template=template)
    jan.drop()
    jan.init()
    return url_for(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    janitor(admin_url, name).drop()


ACTORS = ("anon", "other", "viewer", "member", "admin", "service")


@dataclass
class Tenant:
    client_id: uuid.UUID
    users: dict[str, uuid.UUID] = field(default_factory=dict)  # role -> user id
    rows: dict[str, list[uuid.UUID]] = field(default_factory=dict)  # table -> ids


@dataclass
class World:
    """Two active tenants (A and B) with one user per role each, rows in every table, plus a
    user with no client and an auth user whose profile was removed (for service inserts)."""

    a: Tenant
    b: Tenant
    no_client_user: uuid.UUID
    orphan_auth_user: uuid.UUID

    def claims(self, actor: str) -> dict[str, Any] | None:
        if actor == "anon":
            return None
        if actor == "service":
            return {"role": "service_role"}
        if actor == "other":
            return user_claims(self.b.users["admin"])
        if actor == "nobody":
            return user_claims(self.no_client_user)
        return user_claims(self.a.users[actor])


def add_auth_user(
    conn: psycopg.Connection[Any],
    *,
    email: str,
    client_id: uuid.UUID | None = None,
    role: str | None = None,
) -> uuid.UUID:
    """Insert an auth.users row as GoTrue would; the trigger creates the profile."""
    user_id = uuid.uuid4()
    meta: dict[str, Any] = {"provider": "email", "providers": ["email"]}
    if client_id is not None:
        meta["client_id"] = str(client_id)
    if role is not None:
        meta["role"] = role
    conn.execute(
        """
        insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data,
                                raw_user_meta_data, created_at, updated_at)
        values ('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated',
                %s, %s, '{}'::jsonb, now(), now())
        """,
        (user_id, email, json.dumps(meta)),
    )
    return user_id


def _seed_tenant(conn: psycopg.Connection[Any], label: str) -> Tenant:
    row = conn.execute(
        "insert into public.clients (name) values (%s) returning id", (f"Tenant {label}",)
    ).fetchone()
    assert row is not None
    t = Tenant(client_id=row[0])
    for role in ("viewer", "member", "admin"):
        t.users[role] = add_auth_user(
            conn, email=f"{role}@{label.lower()}.example", client_id=t.client_id, role=role
        )
    c = t.client_id

    def one(query: str, params: tuple[Any, ...]) -> uuid.UUID:
        r = conn.execute(query, params).fetchone()
        assert r is not None
        return uuid.UUID(str(r[0]))

    t.rows["clients"] = [c]
    t.rows["users"] = list(t.users.values())
    kbs = [
        one(
            "insert into public.knowledge_bases (client_id, name) values (%s, %s) returning id",
            (c, f"kb{i}"),
        )
        for i in range(2)
    ]
    cols = [
        one(
            "insert into public.knowledge_collections (client_id, knowledge_base_id, name) "
            "values (%s, %s, %s) returning id",
            (c, kb, "col"),
        )
        for kb in kbs
    ]
    docs = [
        one(
            "insert into public.documents (client_id, collection_id, name) "
            "values (%s, %s, %s) returning id",
            (c, col, f"doc {i}"),
        )
        for i, col in enumerate(cols)
    ]
    chunks = [
        one(
            "insert into public.document_chunks (client_id, document_id, content, chunk_index) "
            "values (%s, %s, %s, %s) returning id",
            (c, doc, f"text {i}", i),
        )
        for i, doc in enumerate(docs)
    ]
    agents = [
        one(
            "insert into public.agents (client_id, name) values (%s, %s) returning id",
            (c, f"agent {i}"),
        )
        for i in range(2)
    ]
    execs = [
        one(
            "insert into public.agent_executions (client_id, agent_id, user_id) "
            "values (%s, %s, %s) returning id",
            (c, agent, t.users["member"]),
        )
        for agent in agents
    ]
    stats = [
        one(
            "insert into public.document_usage_stats (client_id, document_id, chunk_id, agent_id, "
            "last_execution_id) values (%s, %s, %s, %s, %s) returning id",
            (c, docs[i], chunks[i], agents[i], execs[i]),
        )
        for i in range(2)
    ]
    creds = [
        one(
            "insert into public.api_credentials (client_id, service_name, encrypted_value) "
            "values (%s, %s, %s) returning id",
            (c, f"service{i}", "gAAAA-ciphertext"),
        )
        for i in range(2)
    ]
    invs = [
        one(
            "insert into public.investigations (client_id, user_id, query, data_source) "
            "values (%s, %s, %s, %s) returning id",
            (c, uid, "q", "contracts"),
        )
        for uid in t.users.values()
    ]
    cache = [
        one(
            "insert into public.embedding_cache (client_id, model, content_hash, embedding) "
            "values (%s, 'test-model:3', sha256(%s::bytea), '[1,0,0]') returning id",
            (c, f"text {i} of {label}".encode()),
        )
        for i in range(2)
    ]
    audits = [
        one(
            "insert into public.mcp_audit_log (client_id, user_id, transport, tool, statement,"
            " row_count, duration_ms, outcome) values (%s, %s, 'stdio', 'query', %s, 1, 3, 'ok')"
            " returning id",
            (c, t.users["admin"], f"select {i}"),
        )
        for i in range(2)
    ]
    versions = [
        uuid.UUID(str(r[0]))
        for r in conn.execute(
            "select id from public.document_versions where client_id = %s", (c,)
        ).fetchall()
    ]
    t.rows.update(
        knowledge_bases=kbs,
        knowledge_collections=cols,
        documents=docs,
        document_chunks=chunks,
        agents=agents,
        agent_executions=execs,
        document_usage_stats=stats,
        api_credentials=creds,
        investigations=invs,
        document_versions=versions,
        embedding_cache=cache,
        mcp_audit_log=audits,
    )
    return t


def seed_world(url: str) -> World:
    """Seed as postgres (BYPASSRLS: RLS does not apply, as for hosted Supabase's postgres) and
    commit."""
    with psycopg.connect(url) as conn:
        a = _seed_tenant(conn, "A")
        b = _seed_tenant(conn, "B")
        nobody = add_auth_user(conn, email="nobody@example.com")
        orphan = add_auth_user(conn, email="orphan@example.com")
        conn.execute("delete from public.users where id = %s", (orphan,))
        conn.commit()
    return World(a=a, b=b, no_client_user=nobody, orphan_auth_user=orphan)


@dataclass(frozen=True)
class Denied:
    """An expected 42501: `kind` is 'privilege' (no GRANT) or 'rls' (policy check failed)."""

    kind: str

    def __repr__(self) -> str:
        return f"Denied({self.kind})"


PRIVILEGE = Denied("privilege")
RLS = Denied("rls")


def classify(exc: RenumDBError) -> Denied | str:
    if exc.sqlstate == "42501":
        text = str(exc)
        if "row-level security" in text:
            return RLS
        if "permission denied" in text:
            return PRIVILEGE
    return f"{exc.sqlstate}: {exc}"


def allow_storage_delete(conn: psycopg.Connection[Any]) -> None:
    """What Supabase Storage does right before it deletes rows of storage.buckets/objects: set
    storage.allow_delete_query for the current transaction, which lifts the statement triggers
    protect_buckets_delete / protect_objects_delete (anything else gets 42501)."""
    conn.execute("select pg_catalog.set_config('storage.allow_delete_query', 'true', true)")


@contextmanager
def acting(conn: psycopg.Connection[Any], claims: dict[str, Any] | None) -> Iterator[None]:
    """A PostgREST-like request inside the test's transaction (a savepoint)."""
    with renum_db.db.act_as(conn, claims):
        yield


# ------------------------------------------------------------------------------ more actors
# Beyond ACTORS: the custom API role (a member of A through CUSTOM_API_ROLE), users of tenant B at
# each role, a user with no client, an admin of a suspended client, and admins of A whose access
# was revoked (banned, soft-deleted, profile suspended). Against tenant A, each behaves exactly
# like one of the ACTORS columns, named here.
EXTRA_ACTORS: dict[str, str] = {
    "custom": "member",
    "other_viewer": "other",
    "other_member": "other",
    "nobody": "other",
    "suspended_client": "other",
    "banned": "other",
    "soft_deleted": "other",
    "suspended_profile": "other",
}
ALL_ACTORS = ACTORS + tuple(EXTRA_ACTORS)
REVOKED = ("banned", "soft_deleted", "suspended_profile")
LOCKED_OUT = ("nobody", "suspended_client", *REVOKED)  # no active client at all


def column_of(actor: str) -> str:
    """The ACTORS column whose expectations `actor` shares against tenant A."""
    return EXTRA_ACTORS.get(actor, actor)


def revoke(conn: psycopg.Connection[Any], user_id: uuid.UUID, how: str) -> None:
    """Revoke a user the way Supabase Auth (ban, soft delete) or an admin (suspend) does."""
    if how == "banned":
        conn.execute(
            "update auth.users set banned_until = now() + interval '1 day' where id = %s",
            (user_id,),
        )
    elif how == "soft_deleted":
        conn.execute("update auth.users set deleted_at = now() where id = %s", (user_id,))
    elif how == "suspended_profile":
        conn.execute("update public.users set status = 'suspended' where id = %s", (user_id,))
    else:
        raise ValueError(how)


def claims_for(conn: psycopg.Connection[Any], w: World, actor: str) -> dict[str, Any] | None:
    """Claims of any actor in ALL_ACTORS. Actors that need rows of their own (a suspended
    client, revoked admins of A) get them inside the caller's transaction, as the superuser."""
    if actor in ACTORS:
        return w.claims(actor)
    if actor == "custom":
        return user_claims(w.a.users["member"], role=CUSTOM_API_ROLE)
    if actor in ("other_viewer", "other_member"):
        return user_claims(w.b.users[actor.removeprefix("other_")])
    if actor == "nobody":
        return user_claims(w.no_client_user)
    if actor == "suspended_client":
        row = conn.execute(
            "insert into public.clients (name, status) values ('Tenant S', 'suspended') "
            "returning id"
        ).fetchone()
        assert row is not None
        uid = add_auth_user(conn, email=f"{uuid.uuid4()}@s.example", client_id=row[0], role="admin")
        return user_claims(uid)
    if actor in REVOKED:
        uid = add_auth_user(
            conn, email=f"{uuid.uuid4()}@a.example", client_id=w.a.client_id, role="admin"
        )
        revoke(conn, uid, actor)
        return user_claims(uid)
    raise ValueError(actor)


# ------------------------------------------------------------------------------ concurrency


def backend_pid(conn: psycopg.Connection[Any]) -> int:
    return int(conn.info.backend_pid)


def wait_until_blocked(observer_url: str, pid: int, *, timeout: float = 30.0) -> None:
    """Return once backend `pid` waits for a lock. Polls pg_stat_activity; the outcome of a test
    never depends on the timing, only on the lock (the timeout only stops a hung test)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(observer_url, autocommit=True) as observer:
        while time.monotonic() < deadline:
            row = observer.execute(
                "select wait_event_type from pg_catalog.pg_stat_activity where pid = %s", (pid,)
            ).fetchone()
            if row and row[0] == "Lock":
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for a lock")


def wait_for_lock_waiter(observer_url: str, blocker_pid: int, *, timeout: float = 30.0) -> None:
    """Return once some backend waits for a lock held by `blocker_pid` (pg_blocking_pids)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(observer_url, autocommit=True) as observer:
        while time.monotonic() < deadline:
            row = observer.execute(
                "select count(*) from pg_catalog.pg_stat_activity "
                "where %s = any(pg_catalog.pg_blocking_pids(pid))",
                (blocker_pid,),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.01)
    raise AssertionError(f"nothing ever waited for backend {blocker_pid}")


class Background:
    """Run `fn` in a thread; `result()` re-raises its exception or returns its value."""

    def __init__(self, fn: Any) -> None:
        self._fn = fn
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to the test thread by result()
            self._error = exc

    def result(self, timeout: float = 30.0) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the background call never finished"
        if self._error is not None:
            raise self._error
        return self._value


# Installed on import: conftest imports this module before any test module imports act_as.
install_api_role_switch()
