-- depends: 0014.fail-closed-security
--
-- 0015 shape-frontend-api
-- what: the API a browser sees (schema public, what `supabase gen types typescript` turns into
-- the frontend's types) holds only what a signed-in user may call, typed for the generator:
--  - schema `backend` (not exposed by PostgREST, usage for service_role only) receives the
--    worker and backend entry points: the execution and investigation worker RPCs, and backend
--    versions of the RPCs that took a client_id only the backend could pass (search_embeddings,
--    hybrid_search, record_chunk_usage, most_used_documents, start/cancel_agent_execution,
--    cancel_investigation). The public versions lose client_id: their tenant is always the
--    caller's own (private.require_client_id); the backend's must name one
--    (private.backend_client_id). record_agent_execution_progress becomes
--    backend.report_agent_execution_progress (one verb for both workflow families).
--  - public.search_embeddings / hybrid_search take query_embedding real[] (typed number[]; a
--    vector parameter is typed string); hybrid_search returns the composite
--    public.hybrid_search_match, so its one-sided columns are typed nullable.
--  - the nine enumerated text columns become Postgres enums (typed as unions); their check
--    constraints go (the type is the check).
--  - document_chunks.text_search_config (filled by a trigger) is no longer NOT NULL in the
--    catalog (a check constraint keeps it non-null), so inserts may leave it out in the types.
--  - public.api_credentials_metadata: the credential metadata without the ciphertext.
--  - investigations get one write helper (private.update_investigation), like executions.
-- why: issue 11 (the frontend contract) and issue 9 (one shape for both workflow families).
-- Locks: the enum conversions rewrite the nine tables (ACCESS EXCLUSIVE while they run); they are
-- small metadata tables except documents and agent_executions, rewritten in seconds at our sizes.

-- The old entry points are dropped on purpose (this migration replaces the API; docs list the new
-- calls); check constraints and defaults are dropped only to be replaced by the enum type and an
-- enum default; the one NOT NULL dropped is kept by a validated check (document_chunks is
-- locked for the rewrite anyway, so validating in the same transaction costs nothing more).
-- squawk-ignore-file ban-drop-function, ban-drop-constraint, ban-drop-default, ban-drop-not-null, constraint-missing-not-valid

set local lock_timeout = '10s';
set local statement_timeout = '5min';

-- The backend's schema: never in PostgREST's exposed schemas by default (Supabase exposes
-- public and graphql_public), reachable by service_role over a direct connection.
create schema if not exists backend;
revoke all on schema backend from public, anon, authenticated;
grant usage on schema backend to service_role;
comment on schema backend is
  'Entry points of the backend and workers (service_role): not exposed to browsers. See docs/roles.md.';

-- retired: sql/functions/public.record_agent_execution_progress.sql
-- retired: sql/functions/public.complete_agent_execution.sql
-- retired: sql/functions/public.fail_agent_execution.sql
-- retired: sql/functions/public.start_investigation.sql
-- retired: sql/functions/public.report_investigation_progress.sql
-- retired: sql/functions/public.complete_investigation.sql
-- retired: sql/functions/public.fail_investigation.sql
-- retired: sql/functions/private.cancel_investigation.sql

-- Old entry points: their replacements follow (public without client_id, backend with it).
drop function if exists public.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid);
drop function if exists public.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid);
drop function if exists public.most_used_documents(integer, uuid, uuid);
drop function if exists public.record_chunk_usage(uuid, uuid[], uuid, uuid);
drop function if exists public.start_agent_execution(uuid, jsonb, uuid);
drop function if exists public.cancel_agent_execution(uuid, bigint, uuid);
drop function if exists public.record_agent_execution_progress(uuid, jsonb, bigint, uuid);
drop function if exists public.complete_agent_execution(uuid, jsonb, bigint, uuid);
drop function if exists public.fail_agent_execution(uuid, text, bigint, uuid);
drop function if exists public.start_investigation(uuid);
drop function if exists public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint);
drop function if exists public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint);
drop function if exists public.fail_investigation(uuid, text);
drop function if exists public.cancel_investigation(uuid);
drop function if exists private.cancel_investigation(uuid);
drop function if exists private.update_agent_execution(uuid, uuid, text, jsonb, text, bigint);

-- Enumerated columns become enums. The policy that reads agent_executions.status is dropped
-- here and re-created from its template below.
drop policy if exists agent_executions_select on public.agent_executions;
drop policy if exists agent_executions_insert on public.agent_executions;
drop policy if exists agent_executions_update on public.agent_executions;
create type public.client_status as enum ('active', 'suspended', 'inactive');
create type public.user_role as enum ('viewer', 'member', 'admin');
create type public.user_status as enum ('active', 'suspended');
create type public.agent_status as enum ('active', 'inactive', 'archived');
create type public.agent_execution_status as enum ('pending', 'running', 'completed', 'failed', 'cancelled');
create type public.credential_type as enum ('api_key', 'oauth_token', 'bearer_token', 'basic_auth', 'secret');
create type public.document_source_type as enum ('upload', 'url', 'text', 'storage', 'api');
create type public.document_status as enum ('pending', 'processing', 'ready', 'failed');
create type public.document_change_type as enum ('created', 'updated', 'deleted');
create type public.investigation_status as enum ('pending', 'processing', 'completed', 'failed', 'cancelled');

alter table public.clients drop constraint clients_status_chk;
alter table public.clients alter column status drop default;
-- squawk-ignore changing-column-type
alter table public.clients alter column status type public.client_status using status::public.client_status;
alter table public.clients alter column status set default 'active';
alter table public.users drop constraint users_role_chk;
alter table public.users alter column role drop default;
-- squawk-ignore changing-column-type
alter table public.users alter column role type public.user_role using role::public.user_role;
alter table public.users alter column role set default 'viewer';
alter table public.users drop constraint users_status_chk;
alter table public.users alter column status drop default;
-- squawk-ignore changing-column-type
alter table public.users alter column status type public.user_status using status::public.user_status;
alter table public.users alter column status set default 'active';
alter table public.agents drop constraint agents_status_chk;
alter table public.agents alter column status drop default;
-- squawk-ignore changing-column-type
alter table public.agents alter column status type public.agent_status using status::public.agent_status;
alter table public.agents alter column status set default 'active';
alter table public.agent_executions drop constraint agent_executions_status_chk;
alter table public.agent_executions alter column status drop default;
-- squawk-ignore changing-column-type
alter table public.agent_executions alter column status type public.agent_execution_status using status::public.agent_execution_status;
alter table public.agent_executions alter column status set default 'pending';
alter table public.api_credentials drop constraint api_credentials_credential_type_chk;
alter table public.api_credentials alter column credential_type drop default;
-- squawk-ignore changing-column-type
alter table public.api_credentials alter column credential_type type public.credential_type using credential_type::public.credential_type;
alter table public.api_credentials alter column credential_type set default 'api_key';
alter table public.documents drop constraint documents_source_type_chk;
alter table public.documents alter column source_type drop default;
-- squawk-ignore changing-column-type
alter table public.documents alter column source_type type public.document_source_type using source_type::public.document_source_type;
alter table public.documents alter column source_type set default 'upload';
alter table public.documents drop constraint documents_status_chk;
alter table public.documents alter column status drop default;
-- squawk-ignore changing-column-type
alter table public.documents alter column status type public.document_status using status::public.document_status;
alter table public.documents alter column status set default 'pending';
alter table public.document_versions drop constraint document_versions_change_type_chk;
-- squawk-ignore changing-column-type
alter table public.document_versions alter column change_type type public.document_change_type using change_type::public.document_change_type;
alter table public.investigations drop constraint investigations_status_chk;
alter table public.investigations alter column status drop default;
-- squawk-ignore changing-column-type
alter table public.investigations alter column status type public.investigation_status using status::public.investigation_status;
alter table public.investigations alter column status set default 'pending';

-- Filled by a trigger when left out: nullable in the catalog (so the generated Insert type makes
-- it optional), never null in the data.
alter table public.document_chunks
  add constraint document_chunks_text_search_config_chk check (text_search_config is not null) not valid;
alter table public.document_chunks validate constraint document_chunks_text_search_config_chk;
alter table public.document_chunks alter column text_search_config drop not null;

create type public.hybrid_search_match as (
  id uuid,
  document_id uuid,
  collection_id uuid,
  knowledge_base_id uuid,
  content text,
  metadata jsonb,
  chunk_index integer,
  similarity double precision,
  text_rank real,
  semantic_position integer,
  text_position integer,
  score double precision
);
comment on type public.hybrid_search_match is
  'A hybrid_search result row: text_rank and text_position are null when full text did not find the chunk, semantic_position when semantic search did not.';

-- >>> sql/policies/agent_executions.sql.j2 table=agent_executions
/* why: executions are visible to the whole tenant; members start them, always as themselves
   (user_id defaults to auth.uid() and is not writable by API users; the check repeats it).
   The only change a user may make is cancelling: the execution's starter (still at least a
   member) or an admin of the client may set status = 'cancelled' (the column grant is
   `update (status)`, and the check admits no other status); whether the execution may still be
   cancelled is the transition trigger's business. Progress, output, errors and tokens are
   written by the backend (service_role) through the workflow functions. */
alter table public.agent_executions enable row level security;
alter table public.agent_executions force row level security;

create policy agent_executions_select on public.agent_executions
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));

create policy agent_executions_insert on public.agent_executions
  for insert to authenticated
  with check (
    client_id = (select private.current_client_id('member'))
    and user_id = (select auth.uid())
  );

create policy agent_executions_update on public.agent_executions
  for update to authenticated
  using (
    client_id = (select private.current_client_id('admin'))
    or (client_id = (select private.current_client_id('member')) and user_id = (select auth.uid()))
  )
  with check (
    status = 'cancelled'
    and (
      client_id = (select private.current_client_id('admin'))
      or (client_id = (select private.current_client_id('member')) and user_id = (select auth.uid()))
    )
  );
-- <<< sql/policies/agent_executions.sql.j2 table=agent_executions

-- >>> sql/functions/private.current_client_id.sql
/* why: every tenant policy needs "the caller's client, if the caller may do this". One helper
   answers both questions so each policy is a single indexable equality:
       client_id = (select private.current_client_id('member'))
   It returns null (so the policy matches nothing) when the caller has no JWT, no profile row, no
   client, a client that is not active, or a role below `min_role` (viewer < member < admin).
   Revocation is decided here too, at once and whatever the JWT still says: an auth user who is
   banned (auth.users.banned_until in the future) or soft-deleted (auth.users.deleted_at set), or
   whose profile is suspended (public.users.status), gets null as well.
   Cost: one statement of three primary-key probes (users, clients, auth.users by the same id),
   run once per statement because policies wrap it as `(select ...)` (an initplan).
   security definer: it must read public.users, public.clients and auth.users, whose own RLS or
   privileges would otherwise stop it; it reads only the caller's own rows (auth.uid()), so it
   discloses nothing. It lives in the unexposed schema `private`, pins search_path = '' and is
   executable only by the API roles that evaluate policies and column defaults. Stable.
   users.role is the enum public.user_role (0015); its rank is taken from its text. */
create or replace function private.current_client_id(min_role text default 'viewer')
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select u.client_id
  from public.users as u
  join public.clients as c on c.id = u.client_id
  join auth.users as a on a.id = u.id
  where u.id = auth.uid()
    and u.status = 'active'
    and c.status = 'active'
    and a.deleted_at is null
    and (a.banned_until is null or a.banned_until <= pg_catalog.now())
    and array_position(array['viewer', 'member', 'admin'], u.role::text)
        >= array_position(array['viewer', 'member', 'admin'], current_client_id.min_role)
$$;

comment on function private.current_client_id(text) is
  'The calling user''s client id if the client is active, the user is neither banned, soft-deleted nor suspended, and the user''s role is at least min_role (viewer < member < admin); null otherwise. Used by RLS policies and client_id defaults.';

revoke all on function private.current_client_id(text) from public, anon, authenticated, service_role;
grant execute on function private.current_client_id(text) to authenticated, service_role;
-- <<< sql/functions/private.current_client_id.sql

-- >>> sql/functions/private.tg_auth_users__sync_profile.sql
/* why: every Supabase Auth user needs a public.users profile, and writing it from application
   code after sign-up races and can be skipped. This trigger on auth.users writes it in the same
   transaction as the auth row:
   - insert: creates public.users from raw_app_meta_data ->> 'client_id' and ->> 'role' (default
     viewer). app_metadata is writable only with the service key, so a user cannot pick a tenant.
     No client_id means a profile with no tenant, hence no tenant data. A malformed client id,
     an unknown client or an unknown role aborts the sign-up with SQLSTATE RNU01 (a backend bug,
     better loud than a user silently attached to nothing).
   - update: keeps email and last_login (from last_sign_in_at) in step; client and role are
     managed in public.users afterwards (by admins and the backend), not re-read from metadata.
   security definer: the auth service's role cannot write public.users under RLS; the function
   writes only the row of the auth user being changed. */
create or replace function private.tg_auth_users__sync_profile()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  meta jsonb := coalesce(new.raw_app_meta_data, '{}'::jsonb);
  raw_client text := nullif(meta ->> 'client_id', '');
  new_role text := coalesce(nullif(meta ->> 'role', ''), 'viewer');
  new_client uuid;
begin
  if tg_op = 'UPDATE' then
    update public.users as u
       set email = new.email,
           last_login = new.last_sign_in_at
     where u.id = new.id
       and (u.email is distinct from new.email or u.last_login is distinct from new.last_sign_in_at);
    return new;
  end if;

  if raw_client is not null then
    if raw_client !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
      raise exception using
        errcode = 'RNU01',
        message = pg_catalog.format('app_metadata.client_id %L is not a uuid', raw_client);
    end if;
    new_client := raw_client::uuid;
    if not exists (select from public.clients as c where c.id = new_client) then
      raise exception using
        errcode = 'RNU01',
        message = pg_catalog.format('app_metadata.client_id %s names no client', new_client),
        hint = 'Create the client first, or leave client_id out of app_metadata.';
    end if;
  end if;
  if new_role not in ('viewer', 'member', 'admin') then
    raise exception using
      errcode = 'RNU01',
      message = pg_catalog.format('app_metadata.role %L is not one of viewer, member, admin', new_role);
  end if;

  insert into public.users (id, client_id, email, role, created_at, last_login)
  values (new.id, new_client, new.email, new_role::public.user_role,
          coalesce(new.created_at, pg_catalog.now()), new.last_sign_in_at)
  on conflict (id) do nothing;
  return new;
end;
$$;

comment on function private.tg_auth_users__sync_profile() is
  'Trigger on auth.users: creates the public.users profile from app_metadata (client_id, role) on insert (SQLSTATE RNU01 on bad metadata) and keeps email and last_login in step on update.';

revoke all on function private.tg_auth_users__sync_profile() from public, anon, authenticated, service_role;
-- <<< sql/functions/private.tg_auth_users__sync_profile.sql

-- >>> sql/functions/private.tg_documents__record_version.sql
/* why: seed 000 keeps a document history (document_versions) that no caller may forge or skip,
   so the database writes it: one row per insert, real update and delete of public.documents,
   numbered 1, 2, 3... per document, with the caller (auth.uid(), null for the backend), the
   columns that changed and a snapshot of the row. Version numbers cannot collide: update and
   delete hold the document's row lock, and (document_id, version_number) is unique as a backstop.
   An update that changes nothing but updated_at records nothing, and deleting a whole client
   leaves no history behind.
   security definer: API users may read versions but never write them (no grant, no policy);
   this function writes exactly one row per changed document, owned by that document's tenant. */
create or replace function private.tg_documents__record_version()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  doc public.documents := case when tg_op = 'DELETE' then old else new end;
  changed text;
  next_version integer;
begin
  -- A document deleted because its whole client is being deleted leaves no history: the
  -- client's versions are being deleted by the same statement.
  if tg_op = 'DELETE' and not exists (select from public.clients as c where c.id = old.client_id) then
    return null;
  end if;

  if tg_op = 'UPDATE' then
    select pg_catalog.string_agg(n.key, ', ' order by n.key)
      into changed
      from pg_catalog.jsonb_each(pg_catalog.to_jsonb(new)) as n
      join pg_catalog.jsonb_each(pg_catalog.to_jsonb(old)) as o using (key)
     where n.value is distinct from o.value
       and n.key <> 'updated_at';
    if changed is null then
      return null;
    end if;
  end if;

  select coalesce(max(v.version_number), 0) + 1
    into next_version
    from public.document_versions as v
   where v.client_id = doc.client_id
     and v.document_id = doc.id;

  insert into public.document_versions
    (client_id, document_id, version_number, change_type, changed_by, change_description, snapshot)
  values (
    doc.client_id,
    doc.id,
    next_version,
    (case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end)
      ::public.document_change_type,
    auth.uid(),
    case tg_op when 'UPDATE' then 'changed: ' || changed end,
    pg_catalog.to_jsonb(doc)
  );
  return null;
end;
$$;

comment on function private.tg_documents__record_version() is
  'Trigger (after insert/update/delete on public.documents): appends a document_versions row with the next version number, the caller and the changed columns.';

revoke all on function private.tg_documents__record_version() from public, anon, authenticated, service_role;
-- <<< sql/functions/private.tg_documents__record_version.sql

-- >>> sql/functions/private.tg_investigations__enforce_workflow.sql
/* why: the investigation workflow is a rule of the data, not of one client: the worker
   (service_role), an owner over PostgREST, the backend and the SQL console all write the same
   table, so one trigger decides what any insert or update may do (docs/investigations.md):
   - status: a new row is 'pending'; then pending -> processing | cancelled | failed and
     processing -> completed | failed | cancelled; a final state (completed, failed, cancelled)
     is never left (RNI01).
   - progress never decreases (RNI02); completion sets it to 1 (whatever was sent), so a
     completed investigation always reads 100%.
   - progress and outputs (progress, current_phase, results, summary, confidence_score,
     anomalies_found, total_records_analyzed) change only while the row is processing, including
     the update that ends processing; a new row has none (RNI03).
   - the question (query, data_source, filters, anomaly_types) is frozen once the row leaves
     pending, so results always answer the question stored beside them (RNI04).
   - error is written only by the update that makes the row failed (RNI05).
   - started_at and completed_at belong to the database: started_at is stamped when processing
     starts, completed_at when a final state is reached; any value written to them is replaced.
   Everything raises before the row is written, so a refused statement changes nothing.
   security invoker: it only inspects and adjusts the row being written. */
create or replace function private.tg_investigations__enforce_workflow()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  final_states constant public.investigation_status[] := array['completed', 'failed', 'cancelled'];
begin
  if tg_op = 'INSERT' then
    if new.status <> 'pending' then
      raise exception using
        errcode = 'RNI01',
        message = pg_catalog.format('a new investigation starts pending, not %s', new.status),
        hint = 'Create it, then start_investigation / cancel_investigation / fail_investigation.';
    end if;
    if new.progress <> 0 or new.current_phase is not null or new.results <> '[]'::jsonb
       or new.summary is not null or new.confidence_score is not null
       or new.anomalies_found <> 0 or new.total_records_analyzed <> 0 then
      raise exception using
        errcode = 'RNI03',
        message = 'a new investigation has no progress or results yet',
        hint = 'Progress and results are reported while the investigation is processing.';
    end if;
    if new.error is not null then
      raise exception using
        errcode = 'RNI05',
        message = 'a new investigation has no error',
        hint = 'error is written by fail_investigation.';
    end if;
    new.started_at := null;
    new.completed_at := null;
    return new;
  end if;

  if new.status is distinct from old.status
     and not ((old.status = 'pending' and new.status in ('processing', 'cancelled', 'failed'))
              or (old.status = 'processing' and new.status = any (final_states))) then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to %s',
                                  old.id, old.status, new.status),
      hint = case when old.status = any (final_states)
                  then 'A completed, failed or cancelled investigation never changes status.'
                  else 'Allowed: pending -> processing | cancelled | failed; processing -> completed | failed | cancelled.'
             end;
  end if;

  if old.status <> 'pending'
     and (new.query, new.data_source, new.filters, new.anomaly_types)
         is distinct from (old.query, old.data_source, old.filters, old.anomaly_types) then
    raise exception using
      errcode = 'RNI04',
      message = pg_catalog.format('investigation %s is %s: its query, data_source, filters and anomaly_types can no longer change',
                                  old.id, old.status),
      hint = 'Create a new investigation for a different question.';
  end if;

  if new.status = 'completed' and old.status <> 'completed' then
    new.progress := 1;
  end if;

  if old.status <> 'processing'
     and (new.progress, new.current_phase, new.results, new.summary, new.confidence_score,
          new.anomalies_found, new.total_records_analyzed)
         is distinct from (old.progress, old.current_phase, old.results, old.summary,
                           old.confidence_score, old.anomalies_found, old.total_records_analyzed) then
    raise exception using
      errcode = 'RNI03',
      message = pg_catalog.format('investigation %s is %s, not processing: its progress and results cannot change',
                                  old.id, old.status),
      hint = case when old.status = 'pending' then 'Call start_investigation first.'
                  else 'The investigation has ended; stop working on it.' end;
  end if;

  if new.progress < old.progress then
    raise exception using
      errcode = 'RNI02',
      message = pg_catalog.format('investigation %s: progress cannot decrease (from %s to %s)',
                                  old.id, old.progress, new.progress);
  end if;

  if new.error is distinct from old.error
     and not (new.status = 'failed' and old.status <> 'failed') then
    raise exception using
      errcode = 'RNI05',
      message = pg_catalog.format('investigation %s: error is written only when it fails', old.id),
      hint = 'Call fail_investigation(investigation_id, error).';
  end if;

  if old.status = 'pending' and new.status = 'processing' then
    new.started_at := pg_catalog.now();
  else
    new.started_at := old.started_at;
  end if;
  if new.status = any (final_states) and not old.status = any (final_states) then
    new.completed_at := pg_catalog.now();
  else
    new.completed_at := old.completed_at;
  end if;
  return new;
end;
$$;

comment on function private.tg_investigations__enforce_workflow() is
  'Trigger on public.investigations: valid status transitions only (RNI01), progress never decreasing (RNI02) and set to 1 on completion, progress/results only while processing (RNI03), question frozen after pending (RNI04), error only on failure (RNI05); stamps started_at and completed_at.';

revoke all on function private.tg_investigations__enforce_workflow() from public, anon, authenticated, service_role;
-- <<< sql/functions/private.tg_investigations__enforce_workflow.sql

-- >>> sql/functions/private.require_client_id.sql
/* why: the tenant of a user-facing RPC (schema public) is always the caller's own, resolved
   from the JWT's user (auth.uid()) through public.users: there is no client_id parameter to
   trust or to check, so whatever the database role of the request (authenticated or a custom
   role inheriting it), a caller without an active client, or below min_role, gets 42501 and
   nothing else. The backend's entry points (schema backend) name their client instead
   (private.backend_client_id).
   security invoker: it only reads the caller's own profile through private.current_client_id. */
create or replace function private.require_client_id(min_role text default 'viewer')
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  own uuid := private.current_client_id(require_client_id.min_role);
begin
  if own is null then
    if private.current_client_id('viewer') is null then
      raise exception using
        errcode = '42501',
        message = 'the caller belongs to no active client';
    end if;
    raise exception using
      errcode = '42501',
      message = pg_catalog.format('this call requires the %s role', require_client_id.min_role);
  end if;
  return own;
end;
$$;

comment on function private.require_client_id(text) is
  'The calling user''s active client if their role is at least min_role; 42501 otherwise. The tenant of every RPC in schema public.';

revoke all on function private.require_client_id(text) from public, anon, authenticated, service_role;
grant execute on function private.require_client_id(text) to authenticated;
-- <<< sql/functions/private.require_client_id.sql

-- >>> sql/functions/private.backend_client_id.sql
/* why: the backend (service_role) has no tenant of its own, so every function in schema backend
   names the client it acts for; forgetting it must fail (22004), never fall back to "all
   clients". The functions then filter on that client explicitly, so even the backend never
   receives or changes a row of another tenant.
   security invoker: it reads only pg_roles (through private.request_is_backend). stable, since
   the role of the request is fixed within a statement. */
create or replace function private.backend_client_id(client_id uuid)
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  -- Granted to service_role only, and checked again by capability (private.request_is_backend):
  -- a role that merely inherits service_role's grants does not bypass RLS and is no backend.
  if not private.request_is_backend() then
    raise exception using
      errcode = '42501',
      message = 'only the backend (a role that bypasses RLS) may name the client it acts for';
  end if;
  if backend_client_id.client_id is null then
    raise exception using
      errcode = '22004',
      message = 'client_id is required',
      hint = 'The backend has no tenant of its own: pass the client it acts for.';
  end if;
  return backend_client_id.client_id;
end;
$$;

comment on function private.backend_client_id(uuid) is
  'The client a backend call names; 22004 if it names none.';

revoke all on function private.backend_client_id(uuid) from public, anon, authenticated, service_role;
grant execute on function private.backend_client_id(uuid) to service_role;
-- <<< sql/functions/private.backend_client_id.sql

-- >>> sql/functions/private.search_embeddings.sql
/* why: semantic search over one tenant's chunks, right for every tenant size.
   The common recipe (order by embedding <=> query limit k over an HNSW index, RLS filtering the
   rows) fails small tenants: pgvector filters after the index scan, so a tenant holding 0.2% of
   the rows gets almost nothing back. This function decides the plan per call:
   - its callers resolve the one tenant to search (public.search_embeddings: the user's own
     client; backend.search_embeddings: the client the backend names) and it puts an explicit
     `client_id = <tenant>` predicate beside RLS, so the planner sees the tenant;
   - it counts the candidate chunks (tenant + filters), stopping at the exact-scan limit
     (setting renum.search_exact_max_rows, default 5000; chunks without an embedding count too,
     so the count stays an index-only scan). Up to that many, it ranks them all by
     exact cosine distance through the tenant's btree index (recall 1.0, cheap for small sets);
     the distance is written as extensions.cosine_distance(...) so the HNSW index is not used;
   - above it, it walks the HNSW index (private.nearest_chunks_hnsw: pgvector's iterative scan,
     relaxed order, ef_search 64, the planner held to the index), filtering to the tenant, takes
     4 x match_count candidates (at least 40) and keeps the match_count nearest by exact distance;
     if that yields fewer than match_count rows (a very selective filter), it falls back to the
     exact scan.
   A chunk whose stored embedding has no usable norm (NaN distance, sorted last) is never
   returned, so similarity is never NaN.
   Validation fails fast with 22004 (null) or 22023 (wrong dimension, a norm that is zero or not
   finite in pgvector's single precision, match_count
   outside 1..200, metadata_filter not an object, min_similarity outside [-1, 1]); pgvector itself
   rejects NaN and infinite components. (Multi-array unnest(a, b) is FROM-clause syntax that
   cannot be schema-qualified; pg_catalog is always searched first, so it is still safe.) When usage_agent_id is given, the returned chunks are
   recorded in document_usage_stats (private.record_chunk_usage) in the same transaction.
   security invoker: RLS applies on top of the explicit tenant predicate. volatile, because it
   may record usage. Called through public.search_embeddings and backend.search_embeddings,
   the only places that decide the tenant. */
create or replace function private.search_embeddings(
  tenant uuid,
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  min_similarity double precision default null,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null
)
returns table (
  id uuid,
  document_id uuid,
  collection_id uuid,
  knowledge_base_id uuid,
  content text,
  metadata jsonb,
  chunk_index integer,
  similarity double precision
)
language plpgsql
volatile
security invoker
set search_path = ''
as $$
#variable_conflict use_column
declare
  doc_ids uuid[];
  exact_limit integer := coalesce(
    nullif(pg_catalog.current_setting('renum.search_exact_max_rows', true), '')::integer, 5000);
  candidates bigint;
  ids uuid[];
  distances double precision[];
begin
  if query_embedding is null then
    raise exception using errcode = '22004', message = 'query_embedding is required';
  end if;
  if extensions.vector_dims(query_embedding) <> 1536 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('query_embedding has %s dimensions; chunks are embedded with 1536',
                                  extensions.vector_dims(query_embedding));
  end if;
  -- pgvector computes cosine distance in single precision: a norm that is zero or infinite
  -- there (1536 x 1e-45 squares to 0; 1e20 squares to infinity) makes every distance NaN, even
  -- when the double-precision vector_norm is positive and finite. Ask pgvector itself.
  if extensions.cosine_distance(query_embedding, query_embedding) = 'NaN'::float8 then
    raise exception using
      errcode = '22023',
      message = 'query_embedding must have a non-zero, finite norm in single precision';
  end if;
  if match_count is null or match_count < 1 or match_count > 200 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('match_count must be between 1 and 200, got %s', match_count);
  end if;
  if metadata_filter is not null and pg_catalog.jsonb_typeof(metadata_filter) <> 'object' then
    raise exception using errcode = '22023', message = 'metadata_filter must be a JSON object';
  end if;
  if min_similarity is not null
     and (min_similarity = 'NaN'::float8 or min_similarity < -1 or min_similarity > 1) then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('min_similarity must be between -1 and 1, got %s', min_similarity);
  end if;

  if collection_ids is not null or knowledge_base_ids is not null then
    doc_ids := private.scoped_document_ids(tenant, collection_ids, knowledge_base_ids);
  end if;

  select pg_catalog.count(*) into candidates
    from (select
            from public.document_chunks as c
           where c.client_id = tenant
             and (doc_ids is null or c.document_id = any (doc_ids))
             and (metadata_filter is null or c.metadata @> metadata_filter)
           limit exact_limit + 1) as bounded;

  if candidates > exact_limit then
    select pg_catalog.array_agg(n.id order by n.distance, n.id),
           pg_catalog.array_agg(n.distance order by n.distance, n.id)
      into ids, distances
      from (select h.id, h.distance
              from private.nearest_chunks_hnsw(tenant, query_embedding,
                                               greatest(match_count * 4, 40),
                                               doc_ids, metadata_filter) as h
             order by h.distance, h.id
             limit match_count) as n;
  end if;

  if coalesce(pg_catalog.cardinality(ids), 0) < least(match_count, candidates) then
    if usage_agent_id is null then
      -- The common case in one statement: rank and return (a similarity threshold commutes
      -- with "nearest first, then limit", so it can filter before the limit).
      -- Rank first, then join only the winners to their document and collection.
      return query
        select n.id, n.document_id, d.collection_id, k.knowledge_base_id, n.content, n.metadata,
               n.chunk_index, 1 - n.distance
          from (select c.id, c.document_id, c.content, c.metadata, c.chunk_index, c.client_id,
                       extensions.cosine_distance(c.embedding, query_embedding) as distance
                  from public.document_chunks as c
                 where c.client_id = tenant
                   and c.embedding is not null
                   and (doc_ids is null or c.document_id = any (doc_ids))
                   and (metadata_filter is null or c.metadata @> metadata_filter)
                 order by 7, 1
                 limit match_count) as n
          join public.documents as d on d.client_id = n.client_id and d.id = n.document_id
          join public.knowledge_collections as k
            on k.client_id = d.client_id and k.id = d.collection_id
         where n.distance <> 'NaN'::float8
           and (min_similarity is null or 1 - n.distance >= min_similarity)
         order by n.distance, n.id;
      return;
    end if;
    select pg_catalog.array_agg(n.id order by n.distance, n.id),
           pg_catalog.array_agg(n.distance order by n.distance, n.id)
      into ids, distances
      from (select c.id, extensions.cosine_distance(c.embedding, query_embedding) as distance
              from public.document_chunks as c
             where c.client_id = tenant
               and c.embedding is not null
               and (doc_ids is null or c.document_id = any (doc_ids))
               and (metadata_filter is null or c.metadata @> metadata_filter)
             order by 2, 1
             limit match_count) as n;
  end if;

  if ids is not null then
    select pg_catalog.array_agg(r.id order by r.ord), pg_catalog.array_agg(r.distance order by r.ord)
      into ids, distances
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
     where r.distance <> 'NaN'::float8
       and (min_similarity is null or 1 - r.distance >= min_similarity);
  end if;

  if usage_agent_id is not null and ids is not null then
    perform private.record_chunk_usage(tenant, usage_agent_id, ids, usage_execution_id);
  end if;

  return query
    select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
           c.chunk_index, 1 - r.distance
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
      join public.document_chunks as c on c.client_id = tenant and c.id = r.id
      join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
      join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
     order by r.ord;
end;
$$;

comment on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) is
  'Semantic search over one tenant''s chunks (the tenant is resolved by the caller: public.search_embeddings or backend.search_embeddings). Exact for small candidate sets, HNSW iterative scan above renum.search_exact_max_rows (default 5000).';

revoke all on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) to authenticated, service_role;
-- <<< sql/functions/private.search_embeddings.sql

-- >>> sql/functions/private.hybrid_search.sql
/* why: keyword and semantic search fused, for queries where exact words matter (names, codes,
   Portuguese terms an embedding blurs). Two ranked lists over the same tenant scope:
   - full text: document_chunks.fts (a generated tsvector, GIN-indexed) matched against the query
     parsed with websearch_to_tsquery in the text search configuration of every knowledge base in
     scope (Portuguese, English, ... per knowledge base; the parsed queries are OR-ed), ranked by
     ts_rank_cd;
   - semantic: private.search_embeddings (same scoping and validation, same tenant);
   each list takes the top 2 x match_count (at most 200), and they are fused by reciprocal rank
   fusion: score = full_text_weight / (rrf_k + text_position) + semantic_weight / (rrf_k +
   semantic_position). Unlike the usual recipe, every component is returned: similarity (always
   computed), text_rank, both positions (null when a list did not return the chunk) and score.
   Errors as search_embeddings, plus 22004/22023 for an empty query_text, negative weights, both
   weights zero, or rrf_k < 1. security invoker; volatile because it may record usage.
   Returns public.hybrid_search_match, a named composite type, because a row found by one list
   only has null text_rank / positions: PostgREST's type generator types `returns table` columns
   as never null but composite fields as nullable. Called through public.hybrid_search and
   backend.hybrid_search, which decide the tenant. */
create or replace function private.hybrid_search(
  tenant uuid,
  query_text text,
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  full_text_weight double precision default 1,
  semantic_weight double precision default 1,
  rrf_k integer default 50,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null
)
returns setof public.hybrid_search_match
language plpgsql
volatile
security invoker
set search_path = ''
as $$
#variable_conflict use_column
declare
  doc_ids uuid[];
  depth integer;
  config regconfig;
  parsed tsquery;
  query tsquery;
  ids uuid[];
  similarities double precision[];
  text_ranks real[];
  semantic_positions integer[];
  text_positions integer[];
  scores double precision[];
begin
  if query_text is null or pg_catalog.btrim(query_text) = '' then
    raise exception using errcode = '22004', message = 'query_text is required';
  end if;
  if full_text_weight is null or semantic_weight is null
     or full_text_weight < 0 or semantic_weight < 0
     or full_text_weight = 'NaN'::float8 or semantic_weight = 'NaN'::float8
     or (full_text_weight = 0 and semantic_weight = 0) then
    raise exception using
      errcode = '22023',
      message = 'full_text_weight and semantic_weight must be >= 0 and not both 0';
  end if;
  if rrf_k is null or rrf_k < 1 then
    raise exception using errcode = '22023', message = pg_catalog.format('rrf_k must be >= 1, got %s', rrf_k);
  end if;
  if match_count is null or match_count < 1 or match_count > 200 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('match_count must be between 1 and 200, got %s', match_count);
  end if;
  doc_ids := private.scoped_document_ids(tenant, collection_ids, knowledge_base_ids);
  depth := least(200, match_count * 2);

  for config in
    select distinct private.text_search_regconfig(kb.text_search_config)
      from public.knowledge_bases as kb
     where kb.client_id = tenant
       and (knowledge_base_ids is null or kb.id = any (knowledge_base_ids))
  loop
    parsed := pg_catalog.websearch_to_tsquery(config, query_text);
    query := case when query is null then parsed else query operator(pg_catalog.||) parsed end;
  end loop;
  if query is not null and pg_catalog.numnode(query) = 0 then
    query := null;  -- only stop words: the text side contributes nothing
  end if;

  with semantic as (
    select s.id, s.similarity, s.pos
      from private.search_embeddings(
             tenant, query_embedding, depth, collection_ids, knowledge_base_ids, metadata_filter,
             null) with ordinality as s (id, document_id, collection_id, knowledge_base_id,
                                                  content, metadata, chunk_index, similarity, pos)
  ),
  lexical as (
    select t.id, t.rank, pg_catalog.row_number() over (order by t.rank desc, t.id) as pos
      from (select c.id, pg_catalog.ts_rank_cd(c.fts, query) as rank
              from public.document_chunks as c
             where query is not null
               and c.client_id = tenant
               and c.fts operator(pg_catalog.@@) query
               and (doc_ids is null or c.document_id = any (doc_ids))
               and (metadata_filter is null or c.metadata @> metadata_filter)
             order by rank desc, c.id
             limit depth) as t
  ),
  fused as (
    select coalesce(s.id, l.id) as id, s.similarity, s.pos::integer as semantic_position,
           l.pos::integer as text_position, l.rank as text_rank,
           coalesce(full_text_weight / (rrf_k + l.pos), 0)
           + coalesce(semantic_weight / (rrf_k + s.pos), 0) as score
      from semantic as s
      full join lexical as l on l.id = s.id
  )
  select pg_catalog.array_agg(f.id order by f.score desc, f.id),
         pg_catalog.array_agg(f.similarity order by f.score desc, f.id),
         pg_catalog.array_agg(f.text_rank order by f.score desc, f.id),
         pg_catalog.array_agg(f.semantic_position order by f.score desc, f.id),
         pg_catalog.array_agg(f.text_position order by f.score desc, f.id),
         pg_catalog.array_agg(f.score order by f.score desc, f.id)
    into ids, similarities, text_ranks, semantic_positions, text_positions, scores
    from (select * from fused order by score desc, id limit match_count) as f;

  if usage_agent_id is not null and ids is not null then
    perform private.record_chunk_usage(tenant, usage_agent_id, ids, usage_execution_id);
  end if;

  return query
    select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
           c.chunk_index,
           coalesce(r.similarity,
                    nullif(1 - extensions.cosine_distance(c.embedding, query_embedding), 'NaN')),
           r.text_rank, r.semantic_position, r.text_position, r.score
      from unnest(ids, similarities, text_ranks, semantic_positions, text_positions,
                             scores)
             with ordinality as r (id, similarity, text_rank, semantic_position, text_position,
                                   score, ord)
      join public.document_chunks as c on c.client_id = tenant and c.id = r.id
      join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
      join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
     order by r.ord;
end;
$$;

comment on function private.hybrid_search(uuid, text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) is
  'Hybrid search over one tenant (resolved by public.hybrid_search or backend.hybrid_search): full text and semantic similarity fused by reciprocal rank fusion, every component score returned.';

revoke all on function private.hybrid_search(uuid, text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function private.hybrid_search(uuid, text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) to authenticated, service_role;
-- <<< sql/functions/private.hybrid_search.sql

-- >>> sql/functions/private.most_used_documents.sql
/* why: "which documents do our agents actually use?" per client, or per agent, from
   document_usage_stats, for one tenant decided by the caller (public.most_used_documents: the
   user's own client; backend.most_used_documents: the client the backend names).
   security invoker: RLS on document_usage_stats and documents applies on top of the explicit
   tenant predicate. stable and read-only. */
create or replace function private.most_used_documents(
  tenant uuid,
  match_count integer default 10,
  agent_id uuid default null
)
returns table (
  document_id uuid,
  name text,
  collection_id uuid,
  usage_count bigint,
  chunks_used bigint,
  agents bigint,
  first_used_at timestamptz,
  last_used_at timestamptz
)
language plpgsql
stable
security invoker
set search_path = ''
as $$
#variable_conflict use_column
begin
  if match_count is null or match_count < 1 or match_count > 1000 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('match_count must be between 1 and 1000, got %s', match_count);
  end if;
  return query
    select d.id, d.name, d.collection_id,
           pg_catalog.sum(s.usage_count)::bigint,
           pg_catalog.count(distinct s.chunk_id),
           pg_catalog.count(distinct s.agent_id),
           pg_catalog.min(s.first_used_at),
           pg_catalog.max(s.last_used_at)
      from public.document_usage_stats as s
      join public.documents as d on d.client_id = s.client_id and d.id = s.document_id
     where s.client_id = tenant
       and (most_used_documents.agent_id is null or s.agent_id = most_used_documents.agent_id)
     group by d.id, d.name, d.collection_id
     order by 4 desc, 8 desc, 1
     limit match_count;
end;
$$;

comment on function private.most_used_documents(uuid, integer, uuid) is
  'One tenant''s most used documents (by total chunk uses), optionally for one agent; match_count 1..1000. Called by public.most_used_documents and backend.most_used_documents.';

revoke all on function private.most_used_documents(uuid, integer, uuid) from public, anon, authenticated, service_role;
grant execute on function private.most_used_documents(uuid, integer, uuid) to authenticated, service_role;
-- <<< sql/functions/private.most_used_documents.sql

-- >>> sql/functions/private.start_agent_execution.sql
/* why: the one insert behind public.start_agent_execution (a member, in their own client, as
   themselves) and backend.start_agent_execution (the client the backend names, no user). An
   agent that is not in that client is PT404 (another tenant's agent included, which reveals
   nothing); an inactive agent (RNE04) and the monthly token quota (RNE05) are the insert
   trigger's business, so direct inserts obey them too.
   security invoker: the insert goes through the caller's grants and insert policy like any
   PostgREST insert (user_id defaults to auth.uid()). */
create or replace function private.start_agent_execution(
  tenant uuid,
  agent_id uuid,
  input jsonb
)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  result public.agent_executions;
begin
  if start_agent_execution.agent_id is null then
    raise exception using errcode = '22004', message = 'agent_id is required';
  end if;
  if start_agent_execution.input is null then
    raise exception using errcode = '22004', message = 'input is required (use {} for none)';
  end if;
  if not exists (
    select from public.agents as a
     where a.client_id = start_agent_execution.tenant and a.id = start_agent_execution.agent_id
  ) then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('agent %s not found', start_agent_execution.agent_id);
  end if;

  insert into public.agent_executions as e (client_id, agent_id, input)
  values (start_agent_execution.tenant, start_agent_execution.agent_id, start_agent_execution.input)
  returning e.* into result;
  return result;
end;
$$;

comment on function private.start_agent_execution(uuid, uuid, jsonb) is
  'Creates a pending execution of an agent of one client (resolved by the public or backend entry). PT404 unknown agent; RNE04/RNE05 from the insert trigger.';

revoke all on function private.start_agent_execution(uuid, uuid, jsonb) from public, anon, authenticated, service_role;
grant execute on function private.start_agent_execution(uuid, uuid, jsonb) to authenticated, service_role;
-- <<< sql/functions/private.start_agent_execution.sql

-- >>> sql/functions/private.update_agent_execution.sql
/* why: the one statement behind the backend's execution RPCs (backend.report_agent_execution_
   progress, complete_agent_execution, fail_agent_execution, cancel_agent_execution):
   move one execution of one client to `status`, replacing output / error / tokens_used when
   given (null keeps the stored value). Whether the move is legal, the frozen final states, the
   never-decreasing tokens and the timestamps are the update trigger's business
   (private.tg_agent_executions__enforce_transition), so every path obeys the same rules.
   An execution that is not in that client is PT404, for the backend as for anyone.
   security invoker: only service_role may execute it, and service_role may update the table. */
create or replace function private.update_agent_execution(
  client_id uuid,
  execution_id uuid,
  status public.agent_execution_status,
  output jsonb default null,
  error text default null,
  tokens_used bigint default null
)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  result public.agent_executions;
begin
  if update_agent_execution.execution_id is null then
    raise exception using errcode = '22004', message = 'execution_id is required';
  end if;
  if update_agent_execution.tokens_used < 0 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('tokens_used must be non-negative, got %s',
                                  update_agent_execution.tokens_used);
  end if;

  update public.agent_executions as e
     set status = update_agent_execution.status,
         output = coalesce(update_agent_execution.output, e.output),
         error = coalesce(update_agent_execution.error, e.error),
         tokens_used = coalesce(update_agent_execution.tokens_used, e.tokens_used)
   where e.client_id = update_agent_execution.client_id
     and e.id = update_agent_execution.execution_id
  returning e.* into result;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('agent execution %s not found in client %s',
                                  update_agent_execution.execution_id,
                                  update_agent_execution.client_id);
  end if;
  return result;
end;
$$;

comment on function private.update_agent_execution(uuid, uuid, public.agent_execution_status, jsonb, text, bigint) is
  'Worker write of one execution of a client: sets status and, when not null, output, error and tokens_used (transition rules are enforced by the table''s trigger). PT404 if the execution is not in the client; 22023 on negative tokens.';

revoke all on function private.update_agent_execution(uuid, uuid, public.agent_execution_status, jsonb, text, bigint) from public, anon, authenticated, service_role;
grant execute on function private.update_agent_execution(uuid, uuid, public.agent_execution_status, jsonb, text, bigint) to service_role;
-- <<< sql/functions/private.update_agent_execution.sql

-- >>> sql/functions/private.update_investigation.sql
/* why: the one write behind every investigation RPC (backend.start_, report_, complete_,
   fail_ and cancel_investigation, and the owner's public.cancel_investigation through
   private.cancel_own_investigation), as private.update_agent_execution is for executions:
   lock the row (so concurrent calls are serialized and exactly one claim wins), PT404 if it
   does not exist, then one update that sets `status` (null keeps it) and every given value
   (null keeps the stored one). Which transitions, progress and outputs are legal is the
   workflow trigger's business (private.tg_investigations__enforce_workflow), for this path as
   for any writer. Two things only an RPC knows are checked here, generically:
   - naming a status asks for a transition; a row already in that status cannot make it
     (RNI01): a second start of a processing row is a lost race, not a no-op;
   - a report without a status is progress, which only a processing row can make (RNI03), even
     when the values reported equal the stored ones: that is how a worker learns its
     investigation was cancelled.
   security invoker: executable by service_role only (and called by the owner's definer). */
create or replace function private.update_investigation(
  investigation_id uuid,
  status public.investigation_status default null,
  progress double precision default null,
  current_phase text default null,
  results jsonb default null,
  summary text default null,
  confidence_score double precision default null,
  anomalies_found integer default null,
  total_records_analyzed bigint default null,
  error text default null
)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  current_status public.investigation_status;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = update_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', update_investigation.investigation_id);
  end if;
  if update_investigation.status = current_status then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to %s',
                                  update_investigation.investigation_id, current_status,
                                  update_investigation.status),
      hint = 'It is already there: another call made this transition first.';
  end if;
  if update_investigation.status is null and current_status <> 'processing' then
    raise exception using
      errcode = 'RNI03',
      message = pg_catalog.format('investigation %s is %s, not processing: its progress cannot change',
                                  update_investigation.investigation_id, current_status),
      hint = case when current_status = 'pending' then 'Call start_investigation first.'
                  else 'The investigation has ended; stop working on it.' end;
  end if;

  update public.investigations as i
     set status = coalesce(update_investigation.status, i.status),
         progress = coalesce(update_investigation.progress, i.progress),
         current_phase = coalesce(update_investigation.current_phase, i.current_phase),
         results = coalesce(update_investigation.results, i.results),
         summary = coalesce(update_investigation.summary, i.summary),
         confidence_score = coalesce(update_investigation.confidence_score, i.confidence_score),
         anomalies_found = coalesce(update_investigation.anomalies_found, i.anomalies_found),
         total_records_analyzed = coalesce(update_investigation.total_records_analyzed,
                                           i.total_records_analyzed),
         error = coalesce(update_investigation.error, i.error)
   where i.id = update_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function private.update_investigation(uuid, public.investigation_status, double precision, text, jsonb, text, double precision, integer, bigint, text) is
  'The write behind every investigation RPC: locks the row (PT404 if missing), refuses a transition to the current status (RNI01) and progress on a row that is not processing (RNI03), then sets status and the given values (null keeps one); the workflow trigger enforces the rest.';

revoke all on function private.update_investigation(uuid, public.investigation_status, double precision, text, jsonb, text, double precision, integer, bigint, text) from public, anon, authenticated, service_role;
grant execute on function private.update_investigation(uuid, public.investigation_status, double precision, text, jsonb, text, double precision, integer, bigint, text) to service_role;
-- <<< sql/functions/private.update_investigation.sql

-- >>> sql/functions/private.cancel_own_investigation.sql
/* why: owners have no UPDATE privilege on investigations.status (a direct PATCH could otherwise
   pick any status), so cancelling is done for them here. security definer, therefore it
   re-checks what RLS would, for every caller, without asking who the caller is: the row must
   belong to the calling user (user_id = auth.uid()) in their active client, else PT404 exactly
   as for an unknown id, so it discloses nothing about other users' investigations. The backend
   cancels through backend.cancel_investigation instead. The write is
   private.update_investigation (row lock, then the workflow trigger), so a cancel racing with a
   completion either wins or fails with RNI01. */
create or replace function private.cancel_own_investigation(investigation_id uuid)
returns public.investigations
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform
    from public.investigations as i
   where i.id = cancel_own_investigation.investigation_id
     and i.user_id = auth.uid()
     and i.client_id = private.current_client_id('viewer');
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', cancel_own_investigation.investigation_id);
  end if;
  return private.update_investigation(cancel_own_investigation.investigation_id, 'cancelled');
end;
$$;

comment on function private.cancel_own_investigation(uuid) is
  'Cancels a pending or processing investigation of the calling user in their active client: PT404 when not found or not the caller''s, RNI01 when it already ended. Called through public.cancel_investigation.';

revoke all on function private.cancel_own_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function private.cancel_own_investigation(uuid) to authenticated;
-- <<< sql/functions/private.cancel_own_investigation.sql

-- >>> sql/functions/public.search_embeddings.sql
/* why: the semantic search a browser calls (`supabase.rpc('search_embeddings',
   {query_embedding, match_count})`), over the caller's own tenant only. The embedding is a
   `real[]` because that is what a frontend holds (the number[] an embeddings API returns) and
   what PostgREST's type generator types as `number[]` (a `vector` parameter comes out as
   `string`, forcing JSON.stringify); it is converted to pgvector's type here (float4, the
   precision pgvector stores). There is no client_id parameter: the tenant is the caller's own
   active client (private.require_client_id, 42501 without one). The backend calls
   backend.search_embeddings, which takes a vector and names the client.
   The search itself (exact for small tenants, HNSW iterative scan for big ones; validation
   22004/22023; usage recording) is private.search_embeddings, shared with the backend entry.
   security invoker: RLS applies on top of the explicit tenant predicate. volatile, because it
   may record usage. */
create or replace function public.search_embeddings(
  query_embedding real[],
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  min_similarity double precision default null,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null
)
returns table (
  id uuid,
  document_id uuid,
  collection_id uuid,
  knowledge_base_id uuid,
  content text,
  metadata jsonb,
  chunk_index integer,
  similarity double precision
)
language sql
volatile
security invoker
set search_path = ''
as $$
  select *
    from private.search_embeddings(
           private.require_client_id('viewer'),
           search_embeddings.query_embedding::extensions.vector,
           search_embeddings.match_count,
           search_embeddings.collection_ids,
           search_embeddings.knowledge_base_ids,
           search_embeddings.metadata_filter,
           search_embeddings.min_similarity,
           search_embeddings.usage_agent_id,
           search_embeddings.usage_execution_id)
$$;

comment on function public.search_embeddings(real[], integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) is
  'Semantic search over the caller''s tenant: the match_count (1..200, default 5) chunks nearest to query_embedding (1536 numbers) by cosine similarity, best first, optionally within collection_ids / knowledge_base_ids, whose metadata contains metadata_filter, and with similarity >= min_similarity. usage_agent_id (and usage_execution_id) record the returned chunks as used by that agent. Errors: 42501 no active client, 22004 missing embedding, 22023 wrong dimension / zero vector / bad match_count, metadata_filter or min_similarity, PT404 unknown usage agent.';

revoke all on function public.search_embeddings(real[], integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function public.search_embeddings(real[], integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) to authenticated;
-- <<< sql/functions/public.search_embeddings.sql

-- >>> sql/functions/public.hybrid_search.sql
/* why: keyword and semantic search fused, as a browser calls it
   (`supabase.rpc('hybrid_search', {query_text, query_embedding})`), over the caller's own
   tenant only. query_embedding is a `real[]` (typed number[] for frontends, converted to
   pgvector's type here); no client_id parameter (the caller's own active client, 42501 without
   one). It returns public.hybrid_search_match rows, whose text_rank, semantic_position and
   text_position are null for a chunk that only one side found (a named composite type, so the
   generated types say `| null`). The fusion is private.hybrid_search, shared with
   backend.hybrid_search. security invoker; volatile because it may record usage. */
create or replace function public.hybrid_search(
  query_text text,
  query_embedding real[],
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  full_text_weight double precision default 1,
  semantic_weight double precision default 1,
  rrf_k integer default 50,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null
)
returns setof public.hybrid_search_match
language sql
volatile
security invoker
set search_path = ''
as $$
  select *
    from private.hybrid_search(
           private.require_client_id('viewer'),
           hybrid_search.query_text,
           hybrid_search.query_embedding::extensions.vector,
           hybrid_search.match_count,
           hybrid_search.collection_ids,
           hybrid_search.knowledge_base_ids,
           hybrid_search.metadata_filter,
           hybrid_search.full_text_weight,
           hybrid_search.semantic_weight,
           hybrid_search.rrf_k,
           hybrid_search.usage_agent_id,
           hybrid_search.usage_execution_id)
$$;

comment on function public.hybrid_search(text, real[], integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) is
  'Hybrid search over the caller''s tenant: full text (websearch syntax, each knowledge base''s language) and semantic similarity fused by reciprocal rank fusion. Returns each chunk with similarity, text_rank, semantic_position, text_position (null when one side did not find it) and the fused score, best first. Same scoping, validation and errors as search_embeddings, plus 22004 empty query_text and 22023 negative weights, both weights 0 or rrf_k < 1.';

revoke all on function public.hybrid_search(text, real[], integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function public.hybrid_search(text, real[], integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) to authenticated;
-- <<< sql/functions/public.hybrid_search.sql

-- >>> sql/functions/public.most_used_documents.sql
/* why: the caller's most used documents (`supabase.rpc('most_used_documents', {match_count})`),
   in the caller's own active client (42501 without one); the backend calls
   backend.most_used_documents and names the client. security invoker; stable and read-only, so
   PostgREST may serve it over GET. */
create or replace function public.most_used_documents(
  match_count integer default 10,
  agent_id uuid default null
)
returns table (
  document_id uuid,
  name text,
  collection_id uuid,
  usage_count bigint,
  chunks_used bigint,
  agents bigint,
  first_used_at timestamptz,
  last_used_at timestamptz
)
language sql
stable
security invoker
set search_path = ''
as $$
  select *
    from private.most_used_documents(private.require_client_id('viewer'),
                                     most_used_documents.match_count,
                                     most_used_documents.agent_id)
$$;

comment on function public.most_used_documents(integer, uuid) is
  'The caller''s most used documents (by total chunk uses), optionally for one agent: usage_count, distinct chunks and agents, first and last use. match_count 1..1000 (default 10). Errors: 42501 no active client, 22023 match_count out of range.';

revoke all on function public.most_used_documents(integer, uuid) from public, anon, authenticated, service_role;
grant execute on function public.most_used_documents(integer, uuid) to authenticated;
-- <<< sql/functions/public.most_used_documents.sql

-- >>> sql/functions/public.record_chunk_usage.sql
/* why: the RPC a frontend calls to record chunk usage outside a search
   (`supabase.rpc('record_chunk_usage', {agent_id, chunk_ids})`), always in the caller's own
   active client (42501 without one); the backend calls backend.record_chunk_usage and names
   the client. private.record_chunk_usage does the atomic upsert. security invoker. */
create or replace function public.record_chunk_usage(
  agent_id uuid,
  chunk_ids uuid[],
  execution_id uuid default null
)
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.record_chunk_usage(
    private.require_client_id('viewer'),
    record_chunk_usage.agent_id,
    record_chunk_usage.chunk_ids,
    record_chunk_usage.execution_id
  )
$$;

comment on function public.record_chunk_usage(uuid, uuid[], uuid) is
  'Record that an agent of the caller''s client used these chunks (one usage each; repeated ids count repeatedly). Returns the number of chunks recorded. Errors: 42501 no active client, PT404 unknown agent/execution, 22023 more than 1000 ids.';

revoke all on function public.record_chunk_usage(uuid, uuid[], uuid) from public, anon, authenticated, service_role;
grant execute on function public.record_chunk_usage(uuid, uuid[], uuid) to authenticated;
-- <<< sql/functions/public.record_chunk_usage.sql

-- >>> sql/functions/public.start_agent_execution.sql
/* why: the RPC that starts a run (`supabase.rpc('start_agent_execution', {agent_id, input})`):
   a pending execution of an agent of the caller's own active client, started by the caller,
   who must be at least a member (viewers run nothing: 42501). No client_id parameter: the
   backend starts system runs through backend.start_agent_execution.
   security invoker: the insert obeys the table's grants, insert policy and triggers. */
create or replace function public.start_agent_execution(
  agent_id uuid,
  input jsonb default '{}'::jsonb
)
returns public.agent_executions
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.start_agent_execution(
    private.require_client_id('member'),
    start_agent_execution.agent_id,
    start_agent_execution.input
  )
$$;

comment on function public.start_agent_execution(uuid, jsonb) is
  'Start a run of an agent of the caller''s client: a pending execution started by the caller (members and admins). Errors: 42501 viewer or no active client, PT404 unknown agent, RNE04 agent not active, RNE05 monthly token quota reached, RNE06 invalid quota setting.';

revoke all on function public.start_agent_execution(uuid, jsonb) from public, anon, authenticated, service_role;
grant execute on function public.start_agent_execution(uuid, jsonb) to authenticated;
-- <<< sql/functions/public.start_agent_execution.sql

-- >>> sql/functions/public.cancel_agent_execution.sql
/* why: a user stops a run that is pending or running (status cancelled, completed_at stamped by
   the database; a finished one is RNE02). Who may cancel: the user who started it (if still at
   least a member of its client) and admins of the client. That rule is the
   `agent_executions_update` policy together with the column grant `update (status)`, so a
   PostgREST PATCH setting status = cancelled obeys exactly the same rule, and its
   `with check (status = 'cancelled')` means users can do nothing else. An execution of the
   caller's client that the caller may not cancel is 42501; one that the caller cannot see
   (another client's) is PT404. The backend cancels through backend.cancel_agent_execution
   (and may report the final tokens there).
   security invoker: grants, RLS and the transition trigger decide. */
create or replace function public.cancel_agent_execution(execution_id uuid)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  target uuid := private.require_client_id('viewer');
  result public.agent_executions;
begin
  if cancel_agent_execution.execution_id is null then
    raise exception using errcode = '22004', message = 'execution_id is required';
  end if;
  if not exists (
    select from public.agent_executions as e
     where e.client_id = target and e.id = cancel_agent_execution.execution_id
  ) then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('agent execution %s not found', cancel_agent_execution.execution_id);
  end if;

  update public.agent_executions as e
     set status = 'cancelled'
   where e.client_id = target
     and e.id = cancel_agent_execution.execution_id
  returning e.* into result;
  if not found then
    raise exception using
      errcode = '42501',
      message = 'only the user who started an execution (a member) or an admin of its client may cancel it';
  end if;
  return result;
end;
$$;

comment on function public.cancel_agent_execution(uuid) is
  'Cancel a pending or running execution of the caller''s client: its starter (member or admin) or an admin. Errors: 42501 not allowed to cancel it, PT404 unknown execution, RNE02 already finished.';

revoke all on function public.cancel_agent_execution(uuid) from public, anon, authenticated, service_role;
grant execute on function public.cancel_agent_execution(uuid) to authenticated;
-- <<< sql/functions/public.cancel_agent_execution.sql

-- >>> sql/functions/public.cancel_investigation.sql
/* why: the RPC an owner calls to stop their investigation
   (`supabase.rpc('cancel_investigation', {investigation_id})`). The update happens in
   private.cancel_own_investigation, a security definer that re-checks ownership, because owners
   hold no UPDATE privilege on status. The backend calls backend.cancel_investigation.
   security invoker: it only delegates. */
create or replace function public.cancel_investigation(investigation_id uuid)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.cancel_own_investigation(cancel_investigation.investigation_id)
$$;

comment on function public.cancel_investigation(uuid) is
  'Cancel your own pending or processing investigation. completed_at is set by the database; the worker''s next progress report fails with RNI03. Returns the row. Errors: PT404 unknown id or not the caller''s own, RNI01 already ended.';

revoke all on function public.cancel_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function public.cancel_investigation(uuid) to authenticated;
-- <<< sql/functions/public.cancel_investigation.sql

-- >>> sql/functions/backend.search_embeddings.sql
/* why: the backend's semantic search (a worker, the Python API): it holds a pgvector value
   (renum_db.vector.Vector, or '[...]'::extensions.vector) and acts for one client it names
   (22004 without it). Not in an exposed schema, so browsers never see it; callable over a
   direct connection as service_role, or over PostgREST with the service key if a project adds
   `backend` to its exposed schemas (Accept-Profile / supabase-js `.schema('backend')`).
   Same search, validation and usage recording as public.search_embeddings
   (private.search_embeddings). security invoker; volatile because it may record usage. */
create or replace function backend.search_embeddings(
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  min_similarity double precision default null,
  client_id uuid default null,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null
)
returns table (
  id uuid,
  document_id uuid,
  collection_id uuid,
  knowledge_base_id uuid,
  content text,
  metadata jsonb,
  chunk_index integer,
  similarity double precision
)
language sql
volatile
security invoker
set search_path = ''
as $$
  select *
    from private.search_embeddings(
           private.backend_client_id(search_embeddings.client_id),
           search_embeddings.query_embedding,
           search_embeddings.match_count,
           search_embeddings.collection_ids,
           search_embeddings.knowledge_base_ids,
           search_embeddings.metadata_filter,
           search_embeddings.min_similarity,
           search_embeddings.usage_agent_id,
           search_embeddings.usage_execution_id)
$$;

comment on function backend.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) is
  'Backend (service_role): semantic search over the chunks of client_id (required, 22004), as public.search_embeddings. query_embedding is an extensions.vector.';

revoke all on function backend.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) to service_role;
-- <<< sql/functions/backend.search_embeddings.sql

-- >>> sql/functions/backend.hybrid_search.sql
/* why: the backend's hybrid search: a pgvector embedding and the client it acts for (22004
   without it). Same fusion as public.hybrid_search (private.hybrid_search). Not exposed to
   browsers (schema backend). security invoker; volatile because it may record usage. */
create or replace function backend.hybrid_search(
  query_text text,
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  full_text_weight double precision default 1,
  semantic_weight double precision default 1,
  rrf_k integer default 50,
  client_id uuid default null,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null
)
returns setof public.hybrid_search_match
language sql
volatile
security invoker
set search_path = ''
as $$
  select *
    from private.hybrid_search(
           private.backend_client_id(hybrid_search.client_id),
           hybrid_search.query_text,
           hybrid_search.query_embedding,
           hybrid_search.match_count,
           hybrid_search.collection_ids,
           hybrid_search.knowledge_base_ids,
           hybrid_search.metadata_filter,
           hybrid_search.full_text_weight,
           hybrid_search.semantic_weight,
           hybrid_search.rrf_k,
           hybrid_search.usage_agent_id,
           hybrid_search.usage_execution_id)
$$;

comment on function backend.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) is
  'Backend (service_role): hybrid search over client_id''s chunks (required, 22004), as public.hybrid_search. query_embedding is an extensions.vector.';

revoke all on function backend.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) to service_role;
-- <<< sql/functions/backend.hybrid_search.sql

-- >>> sql/functions/backend.most_used_documents.sql
/* why: the backend's view of a client's most used documents: it names the client (22004
   without it). Same answer as public.most_used_documents for a user of that client.
   security invoker; stable and read-only. */
create or replace function backend.most_used_documents(
  match_count integer default 10,
  agent_id uuid default null,
  client_id uuid default null
)
returns table (
  document_id uuid,
  name text,
  collection_id uuid,
  usage_count bigint,
  chunks_used bigint,
  agents bigint,
  first_used_at timestamptz,
  last_used_at timestamptz
)
language sql
stable
security invoker
set search_path = ''
as $$
  select *
    from private.most_used_documents(private.backend_client_id(most_used_documents.client_id),
                                     most_used_documents.match_count,
                                     most_used_documents.agent_id)
$$;

comment on function backend.most_used_documents(integer, uuid, uuid) is
  'Backend (service_role): client_id''s most used documents (client_id required, 22004), as public.most_used_documents.';

revoke all on function backend.most_used_documents(integer, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.most_used_documents(integer, uuid, uuid) to service_role;
-- <<< sql/functions/backend.most_used_documents.sql

-- >>> sql/functions/backend.record_chunk_usage.sql
/* why: the worker records which chunks an agent used, in the client it names (22004 without
   it). private.record_chunk_usage does the atomic upsert. security invoker. */
create or replace function backend.record_chunk_usage(
  agent_id uuid,
  chunk_ids uuid[],
  execution_id uuid default null,
  client_id uuid default null
)
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.record_chunk_usage(
    private.backend_client_id(record_chunk_usage.client_id),
    record_chunk_usage.agent_id,
    record_chunk_usage.chunk_ids,
    record_chunk_usage.execution_id
  )
$$;

comment on function backend.record_chunk_usage(uuid, uuid[], uuid, uuid) is
  'Backend (service_role): record that an agent of client_id (required, 22004) used these chunks. Returns the number recorded. Errors: PT404 unknown agent/execution, 22023 more than 1000 ids.';

revoke all on function backend.record_chunk_usage(uuid, uuid[], uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.record_chunk_usage(uuid, uuid[], uuid, uuid) to service_role;
-- <<< sql/functions/backend.record_chunk_usage.sql

-- >>> sql/functions/backend.start_agent_execution.sql
/* why: the backend starts a system run (scheduled, API-triggered) in the client it names
   (22004 without it); user_id stays null. Same checks as the user's entry
   (private.start_agent_execution). security invoker. */
create or replace function backend.start_agent_execution(
  agent_id uuid,
  input jsonb default '{}'::jsonb,
  client_id uuid default null
)
returns public.agent_executions
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.start_agent_execution(
    private.backend_client_id(start_agent_execution.client_id),
    start_agent_execution.agent_id,
    start_agent_execution.input
  )
$$;

comment on function backend.start_agent_execution(uuid, jsonb, uuid) is
  'Backend (service_role): start a run of an agent of client_id (required, 22004), with no user. Errors: PT404 unknown agent, RNE04 agent not active, RNE05 quota reached, RNE06 invalid quota setting.';

revoke all on function backend.start_agent_execution(uuid, jsonb, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.start_agent_execution(uuid, jsonb, uuid) to service_role;
-- <<< sql/functions/backend.start_agent_execution.sql

-- >>> sql/functions/backend.cancel_agent_execution.sql
/* why: the backend cancels a pending or running execution of the client it names, optionally
   with the final token total (null keeps the stored value); a finished one is RNE02. The
   transition rules live in the table's trigger
   (private.tg_agent_executions__enforce_transition); the write is
   private.update_agent_execution, like every worker write. security invoker. */
create or replace function backend.cancel_agent_execution(
  execution_id uuid,
  tokens_used bigint default null,
  client_id uuid default null
)
returns public.agent_executions
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.update_agent_execution(
    private.backend_client_id(cancel_agent_execution.client_id),
    cancel_agent_execution.execution_id,
    'cancelled',
    tokens_used => cancel_agent_execution.tokens_used
  )
$$;

comment on function backend.cancel_agent_execution(uuid, bigint, uuid) is
  'Backend (service_role): pending or running -> cancelled in client_id (required, 22004), optionally with the final token total. Errors: PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function backend.cancel_agent_execution(uuid, bigint, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.cancel_agent_execution(uuid, bigint, uuid) to service_role;
-- <<< sql/functions/backend.cancel_agent_execution.sql

-- >>> sql/functions/backend.report_agent_execution_progress.sql
/* why: the worker's heartbeat. The first call moves a pending execution to running (the
   database stamps started_at); later calls keep it running. `output` replaces the stored
   output (the worker sends the whole partial result, not a patch) and `tokens_used` is the
   running total so far (never lower than the stored one: RNE03); null leaves either unchanged.
   A finished execution cannot be touched (RNE02). Same verb as
   backend.report_investigation_progress. The transition rules live in the table's trigger
   (private.tg_agent_executions__enforce_transition); the write is
   private.update_agent_execution, like every worker write. security invoker. */
create or replace function backend.report_agent_execution_progress(
  execution_id uuid,
  output jsonb default null,
  tokens_used bigint default null,
  client_id uuid default null
)
returns public.agent_executions
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.update_agent_execution(
    private.backend_client_id(report_agent_execution_progress.client_id),
    report_agent_execution_progress.execution_id,
    'running',
    output => report_agent_execution_progress.output,
    tokens_used => report_agent_execution_progress.tokens_used
  )
$$;

comment on function backend.report_agent_execution_progress(uuid, jsonb, bigint, uuid) is
  'Backend (service_role): mark an execution of client_id (required, 22004) running (started_at set on the first call) and store its partial output and running token total. Errors: PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function backend.report_agent_execution_progress(uuid, jsonb, bigint, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.report_agent_execution_progress(uuid, jsonb, bigint, uuid) to service_role;
-- <<< sql/functions/backend.report_agent_execution_progress.sql

-- >>> sql/functions/backend.complete_agent_execution.sql
/* why: the worker finishes a running execution successfully: status completed, completed_at
   stamped by the database, final output and final token total (null keeps the stored value).
   Only a running execution can complete: a pending one is RNE01 (report progress first, which
   marks it running), a finished one RNE02. The transition rules live in the table's trigger
   (private.tg_agent_executions__enforce_transition); the write is
   private.update_agent_execution, like every worker write. security invoker. */
create or replace function backend.complete_agent_execution(
  execution_id uuid,
  output jsonb default null,
  tokens_used bigint default null,
  client_id uuid default null
)
returns public.agent_executions
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.update_agent_execution(
    private.backend_client_id(complete_agent_execution.client_id),
    complete_agent_execution.execution_id,
    'completed',
    output => complete_agent_execution.output,
    tokens_used => complete_agent_execution.tokens_used
  )
$$;

comment on function backend.complete_agent_execution(uuid, jsonb, bigint, uuid) is
  'Backend (service_role): running -> completed in client_id (required, 22004), with the final output and token total. Errors: PT404 unknown execution, RNE01 not running, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function backend.complete_agent_execution(uuid, jsonb, bigint, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.complete_agent_execution(uuid, jsonb, bigint, uuid) to service_role;
-- <<< sql/functions/backend.complete_agent_execution.sql

-- >>> sql/functions/backend.fail_agent_execution.sql
/* why: the worker records that an execution failed, from pending (it could not even start) or
   running: status failed, `error` (required, non-blank: 22004) says why, completed_at is
   stamped by the database, tokens_used is the final total (null keeps the stored value). The
   transition rules live in the table's trigger
   (private.tg_agent_executions__enforce_transition); the write is
   private.update_agent_execution, like every worker write. security invoker. */
create or replace function backend.fail_agent_execution(
  execution_id uuid,
  error text,
  tokens_used bigint default null,
  client_id uuid default null
)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if fail_agent_execution.error is null or pg_catalog.btrim(fail_agent_execution.error) = '' then
    raise exception using errcode = '22004', message = 'error (why the execution failed) is required';
  end if;
  return private.update_agent_execution(
    private.backend_client_id(fail_agent_execution.client_id),
    fail_agent_execution.execution_id,
    'failed',
    error => fail_agent_execution.error,
    tokens_used => fail_agent_execution.tokens_used
  );
end;
$$;

comment on function backend.fail_agent_execution(uuid, text, bigint, uuid) is
  'Backend (service_role): pending or running -> failed in client_id (required, 22004), with the error text (required) and the final token total. Errors: 22004 no error text, PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function backend.fail_agent_execution(uuid, text, bigint, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.fail_agent_execution(uuid, text, bigint, uuid) to service_role;
-- <<< sql/functions/backend.fail_agent_execution.sql

-- >>> sql/functions/backend.start_investigation.sql
/* why: the worker claims a pending investigation: pending -> processing, and the database stamps
   started_at. Starting is a claim: a second start of the same row fails (RNI01) instead of
   letting two workers process it; private.update_investigation locks the row first, so
   concurrent calls are serialized and exactly one succeeds. security invoker. */
create or replace function backend.start_investigation(investigation_id uuid)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.update_investigation(start_investigation.investigation_id, 'processing')
$$;

comment on function backend.start_investigation(uuid) is
  'Worker (service_role): start a pending investigation (status processing; started_at set by the database). Returns the row. Errors: PT404 unknown id, RNI01 not pending.';

revoke all on function backend.start_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function backend.start_investigation(uuid) to service_role;
-- <<< sql/functions/backend.start_investigation.sql

-- >>> sql/functions/backend.report_investigation_progress.sql
/* why: the worker reports progress while it runs; every update reaches the owner's browser
   through the supabase_realtime publication. progress is required (22004) and may not decrease
   (RNI02, from the workflow trigger); the other arguments are optional and a null keeps the
   stored value. `results` replaces the stored array (send the partial results found so far),
   so a retried call is idempotent. Reporting on an investigation that is not processing fails
   with RNI03, which also tells a worker that the owner cancelled it. Same verb as
   backend.report_agent_execution_progress. security invoker. */
create or replace function backend.report_investigation_progress(
  investigation_id uuid,
  progress double precision,
  current_phase text default null,
  results jsonb default null,
  anomalies_found integer default null,
  total_records_analyzed bigint default null
)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if report_investigation_progress.progress is null then
    raise exception using errcode = '22004', message = 'progress is required';
  end if;
  return private.update_investigation(
    report_investigation_progress.investigation_id,
    progress => report_investigation_progress.progress,
    current_phase => report_investigation_progress.current_phase,
    results => report_investigation_progress.results,
    anomalies_found => report_investigation_progress.anomalies_found,
    total_records_analyzed => report_investigation_progress.total_records_analyzed
  );
end;
$$;

comment on function backend.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) is
  'Worker (service_role): report progress (0..1, never decreasing) of a processing investigation, and optionally its current phase, partial results (replacing the stored array), anomalies found and records analyzed; null keeps a value. Returns the row. Errors: PT404 unknown id, RNI03 not processing (e.g. cancelled), RNI02 progress decreased, 23514 progress outside [0, 1] or results not an array, 22004 progress null.';

revoke all on function backend.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) from public, anon, authenticated, service_role;
grant execute on function backend.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) to service_role;
-- <<< sql/functions/backend.report_investigation_progress.sql

-- >>> sql/functions/backend.complete_investigation.sql
/* why: the worker finishes an investigation: processing -> completed with its summary and
   confidence score (and, optionally, the final results and counts; null keeps a value). The
   workflow trigger sets progress to 1 and completed_at, and refuses completing a row that is
   not processing (RNI01). security invoker. */
create or replace function backend.complete_investigation(
  investigation_id uuid,
  summary text default null,
  confidence_score double precision default null,
  results jsonb default null,
  anomalies_found integer default null,
  total_records_analyzed bigint default null
)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.update_investigation(
    complete_investigation.investigation_id,
    'completed',
    summary => complete_investigation.summary,
    confidence_score => complete_investigation.confidence_score,
    results => complete_investigation.results,
    anomalies_found => complete_investigation.anomalies_found,
    total_records_analyzed => complete_investigation.total_records_analyzed
  )
$$;

comment on function backend.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) is
  'Worker (service_role): complete a processing investigation with its summary and confidence score (0..1), optionally final results and counts (null keeps a value). progress becomes 1 and completed_at is set by the database. Returns the row. Errors: PT404 unknown id, RNI01 not processing, 23514 confidence_score outside [0, 1].';

revoke all on function backend.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) from public, anon, authenticated, service_role;
grant execute on function backend.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) to service_role;
-- <<< sql/functions/backend.complete_investigation.sql

-- >>> sql/functions/backend.fail_investigation.sql
/* why: the worker records that an investigation failed, with the error text the owner will see:
   pending or processing -> failed (the trigger refuses it from a final state: RNI01);
   completed_at is set by the database. The error text is required (22004) and not blank
   (22023); longer than 10000 characters is refused by investigations_error_chk.
   security invoker. */
create or replace function backend.fail_investigation(investigation_id uuid, error text)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if fail_investigation.error is null then
    raise exception using errcode = '22004', message = 'error is required';
  end if;
  if pg_catalog.btrim(fail_investigation.error) = '' then
    raise exception using errcode = '22023', message = 'error must not be blank';
  end if;
  return private.update_investigation(fail_investigation.investigation_id, 'failed',
                                      error => fail_investigation.error);
end;
$$;

comment on function backend.fail_investigation(uuid, text) is
  'Worker (service_role): mark a pending or processing investigation failed with an error text (completed_at set by the database). Returns the row. Errors: PT404 unknown id, RNI01 already ended, 22004 error null, 22023 error blank, 23514 error longer than 10000 characters.';

revoke all on function backend.fail_investigation(uuid, text) from public, anon, authenticated, service_role;
grant execute on function backend.fail_investigation(uuid, text) to service_role;
-- <<< sql/functions/backend.fail_investigation.sql

-- >>> sql/functions/backend.cancel_investigation.sql
/* why: the backend cancels any investigation (an operator, a timeout): pending or processing ->
   cancelled, completed_at set by the database; RNI01 if it already ended. security invoker. */
create or replace function backend.cancel_investigation(investigation_id uuid)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.update_investigation(cancel_investigation.investigation_id, 'cancelled')
$$;

comment on function backend.cancel_investigation(uuid) is
  'Backend (service_role): cancel a pending or processing investigation. Returns the row. Errors: PT404 unknown id, RNI01 already ended.';

revoke all on function backend.cancel_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function backend.cancel_investigation(uuid) to service_role;
-- <<< sql/functions/backend.cancel_investigation.sql

/* why: admins read credential metadata (service, type, dates), never the ciphertext. The table's
   `select *` fails for them (encrypted_value is not granted) and its generated type lists the
   ciphertext; this view is what a frontend reads. security_invoker, so the table's grants and
   its admin-only RLS apply to the caller. Read-only on purpose: `distinct` (one row per
   credential anyway, the id is selected) makes the view not auto-updatable, so the generated
   types offer no Insert/Update for it; admins change metadata on the table. (Not `group by` the
   primary key: that would tie the view to the key, which 0018 re-keys as (client_id, id).) */
create view public.api_credentials_metadata
  with (security_invoker = true)
as
select distinct c.id, c.client_id, c.service_name, c.credential_type, c.created_at,
       c.updated_at, c.last_used_at
  from public.api_credentials as c;

comment on view public.api_credentials_metadata is
  'Credential metadata of the caller''s client, without the ciphertext (admins; security_invoker, so api_credentials'' grants and RLS apply).';

revoke all on table public.api_credentials_metadata from public, anon, authenticated, service_role;
grant select on table public.api_credentials_metadata to authenticated, service_role;

notify pgrst, 'reload schema';
