-- depends: 0015.shape-frontend-api
--
-- 0016 create-mcp-access
-- what: the database side of `renum-db mcp`, the MCP server through which a tenant's AI agents
-- read their own data: the login role renum_mcp, the audit table public.mcp_audit_log (readable
-- by the tenant's admins only), and two narrow security-definer functions that only renum_mcp
-- may execute (resolve a user for stdio mode, append an audit row).
-- why: the MCP server runs SQL written by an LLM that reads tenant documents, so its last line
-- of defence is the role it logs in as. renum_mcp is not a superuser, does not bypass RLS, has no
-- privilege on any table and is a member of anon and authenticated only (no inherit): it can
-- become those two roles, whose rights RLS limits to one tenant, and nothing else, so even a
-- statement that escaped the server's parser and read-only transaction could not `reset role`
-- or `set role` into service_role or postgres (docs/mcp.md, "Security layers").
-- Roles are cluster-wide: the role is created only where missing and then checked; an existing
-- renum_mcp that has more rights stops the migration with RNM01. It is created with LOGIN and no
-- password: nothing can log in with it until an operator sets one (docs/mcp.md). Granting anon
-- and authenticated needs ADMIN OPTION on them, which Supabase's `postgres` has.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'renum_mcp') then
    create role renum_mcp login noinherit nosuperuser nocreatedb nocreaterole noreplication
      nobypassrls;
    -- Only on a role created here: commenting needs ADMIN OPTION on it (PostgreSQL 16+).
    comment on role renum_mcp is
      'renum-db MCP server login: may only become anon or authenticated (RLS applies), and execute private.resolve_mcp_user and private.record_mcp_call.';
  end if;
end
$$;

-- Membership where missing (a repeated grant only raises a notice on PostgreSQL 16+, but an
-- existing membership may have been granted by another role).
do $$
declare
  api_role text;
begin
  foreach api_role in array array['anon', 'authenticated'] loop
    if not exists (
      select
        from pg_catalog.pg_auth_members as m
       where m.roleid = (select oid from pg_catalog.pg_roles where rolname = api_role)
         and m.member = (select oid from pg_catalog.pg_roles where rolname = 'renum_mcp')
    ) then
      if not pg_catalog.pg_has_role(current_user, api_role, 'MEMBER WITH ADMIN OPTION') then
        raise exception using
          errcode = 'RNP01',
          message = pg_catalog.format(
            'renum-db prerequisites missing: the migrating role %s cannot grant %s to renum_mcp',
            current_user, api_role),
          hint = 'Supabase''s postgres holds ADMIN OPTION on anon and authenticated; elsewhere grant them to the migrating role WITH ADMIN OPTION.';
      end if;
      execute pg_catalog.format('grant %I to renum_mcp', api_role);
    end if;
  end loop;
end
$$;

-- The role must be no more than a way into anon and authenticated.
do $$
declare
  r record;
  extra text[];
begin
  select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication
    into r
    from pg_catalog.pg_roles
   where rolname = 'renum_mcp';
  select pg_catalog.array_agg(g.rolname::text order by g.rolname)
    into extra
    from pg_catalog.pg_auth_members as m
    join pg_catalog.pg_roles as g on g.oid = m.roleid
   where m.member = (select oid from pg_catalog.pg_roles where rolname = 'renum_mcp')
     and g.rolname not in ('anon', 'authenticated');
  if r.rolsuper or r.rolbypassrls or r.rolcreaterole or r.rolcreatedb or r.rolreplication
     or extra is not null then
    raise exception using
      errcode = 'RNM01',
      message = 'role renum_mcp has more rights than anon and authenticated',
      detail = pg_catalog.format(
        'superuser %s, bypassrls %s, createrole %s, createdb %s, replication %s, other memberships %s',
        r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
        coalesce(pg_catalog.array_to_string(extra, ', '), 'none')),
      hint = 'Strip those attributes and memberships from renum_mcp (or drop it) and migrate again; see docs/mcp.md.';
  end if;
end
$$;

-- Only to find the two functions below: every other function in private is executable by
-- explicit grants to other roles only.
grant usage on schema private to renum_mcp;

create table public.mcp_audit_log (
  id uuid not null default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  user_id uuid not null,
  agent_id uuid,
  transport text not null,
  tool text not null,
  statement text,
  row_count integer,
  duration_ms integer not null,
  outcome text not null,
  message text,
  created_at timestamptz not null default now(),
  -- Keyed by tenant first, like every distributed table (docs/scale-out.md); id stays unique.
  constraint mcp_audit_log_pkey primary key (client_id, id),
  constraint mcp_audit_log_id_key unique (id),
  constraint mcp_audit_log_transport_chk check (transport in ('stdio', 'http')),
  constraint mcp_audit_log_tool_chk
    check (tool in ('list_tables', 'list_columns', 'search', 'query')),
  constraint mcp_audit_log_outcome_chk check (outcome in ('ok', 'refused', 'error')),
  constraint mcp_audit_log_row_count_chk check (row_count is null or row_count >= 0),
  constraint mcp_audit_log_duration_ms_chk check (duration_ms >= 0)
);
comment on table public.mcp_audit_log is
  'One row per MCP tool call by a tenant''s agent (renum-db mcp): who, tool, statement, rows, duration, outcome. Readable by the tenant''s admins; written only through private.record_mcp_call; the backend may prune.';
comment on column public.mcp_audit_log.user_id is 'The user the call ran as (kept after the user is deleted, so no foreign key).';
comment on column public.mcp_audit_log.agent_id is 'The agent the server was started for, if any (kept after the agent is deleted).';
comment on column public.mcp_audit_log.statement is 'The SQL of a query call, the search text, or the table name; at most 10000 characters.';
comment on column public.mcp_audit_log.outcome is 'ok | refused (the server''s checks rejected it) | error (the database or the provider failed).';
comment on column public.mcp_audit_log.message is 'The error message the agent received, if any.';

create index mcp_audit_log_client_created_idx on public.mcp_audit_log (client_id, created_at desc);

create trigger mcp_audit_log_forbid_client_id_change
  before update of client_id on public.mcp_audit_log
  for each row execute function private.tg__forbid_client_id_change();

revoke all on table public.mcp_audit_log from public, anon, authenticated, service_role;
grant select on table public.mcp_audit_log to authenticated;
grant select, delete on table public.mcp_audit_log to service_role;

-- >>> sql/policies/tenant_table.sql.j2 table=mcp_audit_log select=admin insert=none update=none delete=none
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for mcp_audit_log: select=admin, insert=none, update=none, delete=none. */
alter table public.mcp_audit_log enable row level security;
alter table public.mcp_audit_log force row level security;
create policy mcp_audit_log_select on public.mcp_audit_log
  for select to authenticated
  using (client_id = (select private.current_client_id('admin')));
-- <<< sql/policies/tenant_table.sql.j2 table=mcp_audit_log select=admin insert=none update=none delete=none

-- >>> sql/functions/private.resolve_mcp_user.sql
/* why: `renum-db mcp --user <email|id>` runs an MCP server for one user over stdio. The server
   logs in as the dedicated role renum_mcp, which must not read auth.users or public.users (it
   can only become authenticated/anon, and then RLS shows it its own tenant at most). This
   function is the one narrow thing it may ask: "which user is this email or id?". It answers
   with the user's id, and only for a user who can sign in: an auth.users row that is not
   deleted and not banned now, with an active public.users profile. Anything else (unknown
   email, a deleted, banned or suspended user, a profile-less auth user) gives null, so the server refuses to start
   without learning why. It never returns the email, the tenant or the role.
   security definer: it reads auth.users and public.users past their privileges and RLS; it
   lives in the unexposed schema `private`, pins search_path = '' and is executable by
   renum_mcp only (not by any API role). Stable: it reads only. */
create or replace function private.resolve_mcp_user(identifier text)
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select u.id
    from auth.users as u
    join public.users as p on p.id = u.id
   where (case
            when resolve_mcp_user.identifier ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then u.id = resolve_mcp_user.identifier::uuid
            else pg_catalog.lower(u.email) = pg_catalog.lower(pg_catalog.btrim(resolve_mcp_user.identifier))
          end)
     and p.status = 'active'
     and u.deleted_at is null
     and (u.banned_until is null or u.banned_until <= pg_catalog.now())
   limit 1
$$;

comment on function private.resolve_mcp_user(text) is
  'The id of the user with this email (case-insensitive) or id, if that user can sign in (not deleted, not banned, an active profile); null otherwise. For the MCP login role renum_mcp only.';

revoke all on function private.resolve_mcp_user(text) from public;
grant execute on function private.resolve_mcp_user(text) to renum_mcp;
-- <<< sql/functions/private.resolve_mcp_user.sql

-- >>> sql/functions/private.record_mcp_call.sql
/* why: every MCP tool call is audited (who, which tool, the statement or arguments, rows
   returned, duration, outcome). The MCP server writes the row after the call, in its own
   transaction, as its login role renum_mcp, which holds no privilege on any table: this function
   is its only way in. The tenant is not taken from the caller but derived from the user's
   profile, so the server cannot file a call under another tenant; a user without a client gets
   no row (the server's log still has the call). Long texts are cut to 10000 characters.
   A statement that escaped the MCP server's checks cannot forge audit rows through this
   function either: the server runs agent SQL in READ ONLY transactions, where the insert fails.
   security definer: public.mcp_audit_log is readable by tenant admins only and writable by
   nobody else; private schema, search_path = '', executable by renum_mcp only. */
create or replace function private.record_mcp_call(
  user_id uuid,
  transport text,
  tool text,
  statement text,
  row_count integer,
  duration_ms integer,
  outcome text,
  message text default null,
  agent_id uuid default null
)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  insert into public.mcp_audit_log (client_id, user_id, agent_id, transport, tool, statement,
                                    row_count, duration_ms, outcome, message)
  select p.client_id, p.id, record_mcp_call.agent_id, record_mcp_call.transport,
         record_mcp_call.tool, pg_catalog.left(record_mcp_call.statement, 10000),
         record_mcp_call.row_count, record_mcp_call.duration_ms, record_mcp_call.outcome,
         pg_catalog.left(record_mcp_call.message, 10000)
    from public.users as p
   where p.id = record_mcp_call.user_id
     and p.client_id is not null
$$;

comment on function private.record_mcp_call(uuid, text, text, text, integer, integer, text, text, uuid) is
  'Append one MCP tool call to public.mcp_audit_log under the client of user_id (nothing for a user without a client). For the MCP login role renum_mcp only.';

revoke all on function private.record_mcp_call(uuid, text, text, text, integer, integer, text, text, uuid) from public;
grant execute on function private.record_mcp_call(uuid, text, text, text, integer, integer, text, text, uuid) to renum_mcp;
-- <<< sql/functions/private.record_mcp_call.sql

notify pgrst, 'reload schema';
