-- 0015 rollback: back to 0012's API: the worker and backend RPCs return to public (with
-- client_id), schema backend goes, enums become text with their check constraints again,
-- document_chunks.text_search_config NOT NULL again, the credentials metadata view goes.
-- The function bodies below are the versions 0009/0010/0007 installed (copied, not included:
-- sql/ holds the current versions).
-- It restores what 0012 had, so it drops what 0015 made and rewrites the enum columns back.
-- squawk-ignore-file adding-not-nullable-field, ban-drop-constraint, ban-drop-default, ban-drop-type, changing-column-type, constraint-missing-not-valid
set local lock_timeout = '10s';
set local statement_timeout = '5min';

drop view if exists public.api_credentials_metadata;

drop function if exists public.search_embeddings(real[], integer, uuid[], uuid[], jsonb, double precision, uuid, uuid);
drop function if exists public.hybrid_search(text, real[], integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid);
drop function if exists public.most_used_documents(integer, uuid);
drop function if exists public.record_chunk_usage(uuid, uuid[], uuid);
drop function if exists public.start_agent_execution(uuid, jsonb);
drop function if exists public.cancel_agent_execution(uuid);
drop function if exists public.cancel_investigation(uuid);
drop function if exists backend.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid);
drop function if exists backend.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid);
drop function if exists backend.most_used_documents(integer, uuid, uuid);
drop function if exists backend.record_chunk_usage(uuid, uuid[], uuid, uuid);
drop function if exists backend.start_agent_execution(uuid, jsonb, uuid);
drop function if exists backend.cancel_agent_execution(uuid, bigint, uuid);
drop function if exists backend.report_agent_execution_progress(uuid, jsonb, bigint, uuid);
drop function if exists backend.complete_agent_execution(uuid, jsonb, bigint, uuid);
drop function if exists backend.fail_agent_execution(uuid, text, bigint, uuid);
drop function if exists backend.start_investigation(uuid);
drop function if exists backend.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint);
drop function if exists backend.complete_investigation(uuid, text, double precision, jsonb, integer, bigint);
drop function if exists backend.fail_investigation(uuid, text);
drop function if exists backend.cancel_investigation(uuid);
drop function if exists private.require_client_id(text);
drop function if exists private.backend_client_id(uuid);
drop function if exists private.hybrid_search(uuid, text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid);
drop function if exists private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid);
drop function if exists private.most_used_documents(uuid, integer, uuid);
drop function if exists private.start_agent_execution(uuid, uuid, jsonb);
drop function if exists private.cancel_own_investigation(uuid);
drop function if exists private.update_investigation(uuid, public.investigation_status, double precision, text, jsonb, text, double precision, integer, bigint, text);
drop function if exists private.update_agent_execution(uuid, uuid, public.agent_execution_status, jsonb, text, bigint);
drop schema if exists backend;

drop policy if exists agent_executions_select on public.agent_executions;
drop policy if exists agent_executions_insert on public.agent_executions;
drop policy if exists agent_executions_update on public.agent_executions;
alter table public.clients alter column status drop default;
alter table public.clients alter column status type text using status::text;
alter table public.clients alter column status set default 'active';
alter table public.clients add constraint clients_status_chk check (status in ('active', 'suspended', 'inactive'));
alter table public.users alter column role drop default;
alter table public.users alter column role type text using role::text;
alter table public.users alter column role set default 'viewer';
alter table public.users add constraint users_role_chk check (role in ('viewer', 'member', 'admin'));
alter table public.users alter column status drop default;
alter table public.users alter column status type text using status::text;
alter table public.users alter column status set default 'active';
alter table public.users add constraint users_status_chk check (status in ('active', 'suspended'));
alter table public.agents alter column status drop default;
alter table public.agents alter column status type text using status::text;
alter table public.agents alter column status set default 'active';
alter table public.agents add constraint agents_status_chk check (status in ('active', 'inactive', 'archived'));
alter table public.agent_executions alter column status drop default;
alter table public.agent_executions alter column status type text using status::text;
alter table public.agent_executions alter column status set default 'pending';
alter table public.agent_executions add constraint agent_executions_status_chk check (status in ('pending', 'running', 'completed', 'failed', 'cancelled'));
alter table public.api_credentials alter column credential_type drop default;
alter table public.api_credentials alter column credential_type type text using credential_type::text;
alter table public.api_credentials alter column credential_type set default 'api_key';
alter table public.api_credentials add constraint api_credentials_credential_type_chk check (credential_type in ('api_key', 'oauth_token', 'bearer_token', 'basic_auth', 'secret'));
alter table public.documents alter column source_type drop default;
alter table public.documents alter column source_type type text using source_type::text;
alter table public.documents alter column source_type set default 'upload';
alter table public.documents add constraint documents_source_type_chk check (source_type in ('upload', 'url', 'text', 'storage', 'api'));
alter table public.documents alter column status drop default;
alter table public.documents alter column status type text using status::text;
alter table public.documents alter column status set default 'pending';
alter table public.documents add constraint documents_status_chk check (status in ('pending', 'processing', 'ready', 'failed'));
alter table public.document_versions alter column change_type type text using change_type::text;
alter table public.document_versions add constraint document_versions_change_type_chk check (change_type in ('created', 'updated', 'deleted'));
alter table public.investigations alter column status drop default;
alter table public.investigations alter column status type text using status::text;
alter table public.investigations alter column status set default 'pending';
alter table public.investigations add constraint investigations_status_chk check (status in ('pending', 'processing', 'completed', 'failed', 'cancelled'));
drop type if exists public.client_status;
drop type if exists public.user_role;
drop type if exists public.user_status;
drop type if exists public.agent_status;
drop type if exists public.agent_execution_status;
drop type if exists public.credential_type;
drop type if exists public.document_source_type;
drop type if exists public.document_status;
drop type if exists public.document_change_type;
drop type if exists public.investigation_status;
drop type if exists public.hybrid_search_match;

alter table public.document_chunks alter column text_search_config set not null;
alter table public.document_chunks drop constraint if exists document_chunks_text_search_config_chk;

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

-- private.current_client_id as 0014 left it
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
   executable only by the API roles that evaluate policies and column defaults. Stable. */
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
    and array_position(array['viewer', 'member', 'admin'], u.role)
        >= array_position(array['viewer', 'member', 'admin'], current_client_id.min_role)
$$;

comment on function private.current_client_id(text) is
  'The calling user''s client id if the client is active, the user is neither banned, soft-deleted nor suspended, and the user''s role is at least min_role (viewer < member < admin); null otherwise. Used by RLS policies and client_id defaults.';

revoke all on function private.current_client_id(text) from public;
grant execute on function private.current_client_id(text) to authenticated, service_role;
-- <<< sql/functions/private.current_client_id.sql

-- private.tg_auth_users__sync_profile as before 0015
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
  values (new.id, new_client, new.email, new_role,
          coalesce(new.created_at, pg_catalog.now()), new.last_sign_in_at)
  on conflict (id) do nothing;
  return new;
end;
$$;

comment on function private.tg_auth_users__sync_profile() is
  'Trigger on auth.users: creates the public.users profile from app_metadata (client_id, role) on insert (SQLSTATE RNU01 on bad metadata) and keeps email and last_login in step on update.';

revoke all on function private.tg_auth_users__sync_profile() from public;

-- private.tg_documents__record_version as before 0015
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
    case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end,
    auth.uid(),
    case tg_op when 'UPDATE' then 'changed: ' || changed end,
    pg_catalog.to_jsonb(doc)
  );
  return null;
end;
$$;

comment on function private.tg_documents__record_version() is
  'Trigger (after insert/update/delete on public.documents): appends a document_versions row with the next version number, the caller and the changed columns.';

revoke all on function private.tg_documents__record_version() from public;

-- private.tg_investigations__enforce_workflow as before 0015
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
  final_states constant text[] := array['completed', 'failed', 'cancelled'];
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

revoke all on function private.tg_investigations__enforce_workflow() from public;

-- private.cancel_investigation as 0014 left it
-- >>> sql/functions/private.cancel_investigation.sql
/* why: cancelling writes status, which owners may not write directly (no column privilege), so
   this function does it for them. security definer, therefore it re-checks what RLS would: unless
   the request is the backend (private.request_is_backend: a role that bypasses RLS), whatever
   the request's role is called, the row must belong to the caller (user_id = auth.uid()) in the
   caller's active client, else it answers PT404 exactly as for an unknown id, so it discloses
   nothing about other users' investigations. The backend may cancel any investigation. Only pending or processing rows can be
   cancelled (RNI01); the row is locked before its status is read, so a cancel racing with
   complete_investigation either wins or fails with RNI01. The workflow trigger still applies. */
create or replace function private.cancel_investigation(investigation_id uuid)
returns public.investigations
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  backend boolean := private.request_is_backend();
  current_status text;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = cancel_investigation.investigation_id
     and (backend
          or (i.user_id = auth.uid() and i.client_id = private.current_client_id('viewer')))
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', cancel_investigation.investigation_id);
  end if;
  if current_status not in ('pending', 'processing') then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to cancelled',
                                  cancel_investigation.investigation_id, current_status),
      hint = 'Only a pending or processing investigation can be cancelled.';
  end if;
  update public.investigations as i
     set status = 'cancelled'
   where i.id = cancel_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function private.cancel_investigation(uuid) is
  'Cancels a pending or processing investigation of the calling user, or any investigation for the backend (a role that bypasses RLS): PT404 when not found or not the caller''s, RNI01 when it already ended. Called through public.cancel_investigation.';

revoke all on function private.cancel_investigation(uuid) from public;
grant execute on function private.cancel_investigation(uuid) to authenticated, service_role;
-- <<< sql/functions/private.cancel_investigation.sql

-- private.update_agent_execution as before 0015
/* why: the one statement behind the worker's RPCs (record_agent_execution_progress,
   complete_agent_execution, fail_agent_execution and the backend's cancel_agent_execution):
   move one execution of one client to `status`, replacing output / error / tokens_used when
   given (null keeps the stored value). Whether the move is legal, the frozen final states, the
   never-decreasing tokens and the timestamps are the update trigger's business
   (private.tg_agent_executions__enforce_transition), so every path obeys the same rules.
   An execution that is not in that client is PT404, for the backend as for anyone.
   security invoker: only service_role may execute it, and service_role may update the table. */
create or replace function private.update_agent_execution(
  client_id uuid,
  execution_id uuid,
  status text,
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

comment on function private.update_agent_execution(uuid, uuid, text, jsonb, text, bigint) is
  'Worker write of one execution of a client: sets status and, when not null, output, error and tokens_used (transition rules are enforced by the table''s trigger). PT404 if the execution is not in the client; 22023 on negative tokens.';

revoke all on function private.update_agent_execution(uuid, uuid, text, jsonb, text, bigint) from public;
grant execute on function private.update_agent_execution(uuid, uuid, text, jsonb, text, bigint) to service_role;

-- public.search_embeddings as 0014 left it
-- >>> sql/functions/public.search_embeddings.sql
/* why: semantic search over one tenant's chunks, right for every tenant size.
   The common recipe (order by embedding <=> query limit k over an HNSW index, RLS filtering the
   rows) fails small tenants: pgvector filters after the index scan, so a tenant holding 0.2% of
   the rows gets almost nothing back. This function decides the plan per call:
   - it resolves the one tenant to search (private.request_client_id) and puts an explicit
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
   may record usage. */
create or replace function public.search_embeddings(
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
language plpgsql
volatile
security invoker
set search_path = ''
as $$
#variable_conflict use_column
declare
  tenant uuid;
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

  tenant := private.request_client_id(search_embeddings.client_id);
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

comment on function public.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) is
  'Semantic search over the caller''s tenant: the match_count (1..200, default 5) chunks nearest to query_embedding (1536 dims) by cosine similarity, best first, optionally within collection_ids / knowledge_base_ids, whose metadata contains metadata_filter, and with similarity >= min_similarity. Exact for small candidate sets, HNSW iterative scan above renum.search_exact_max_rows (default 5000). The backend (service_role) must pass client_id. usage_agent_id (and usage_execution_id) record the returned chunks as used by that agent. Errors: 22004, 22023, 42501, PT404.';

revoke all on function public.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) from public, anon;
grant execute on function public.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) to authenticated, service_role;
-- <<< sql/functions/public.search_embeddings.sql

-- public.hybrid_search as 0014 left it
-- >>> sql/functions/public.hybrid_search.sql
/* why: keyword and semantic search fused, for queries where exact words matter (names, codes,
   Portuguese terms an embedding blurs). Two ranked lists over the same tenant scope:
   - full text: document_chunks.fts (a generated tsvector, GIN-indexed) matched against the query
     parsed with websearch_to_tsquery in the text search configuration of every knowledge base in
     scope (Portuguese, English, ... per knowledge base; the parsed queries are OR-ed), ranked by
     ts_rank_cd;
   - semantic: public.search_embeddings (same scoping, validation and tenant rules);
   each list takes the top 2 x match_count (at most 200), and they are fused by reciprocal rank
   fusion: score = full_text_weight / (rrf_k + text_position) + semantic_weight / (rrf_k +
   semantic_position). Unlike the usual recipe, every component is returned: similarity (always
   computed), text_rank, both positions (null when a list did not return the chunk) and score.
   Errors as search_embeddings, plus 22004/22023 for an empty query_text, negative weights, both
   weights zero, or rrf_k < 1. security invoker; volatile because it may record usage. */
create or replace function public.hybrid_search(
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
returns table (
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
)
language plpgsql
volatile
security invoker
set search_path = ''
as $$
#variable_conflict use_column
declare
  tenant uuid;
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
  -- Validates the embedding, the filters and the tenant exactly as the semantic search does.
  tenant := private.request_client_id(hybrid_search.client_id);
  doc_ids := private.scoped_document_ids(tenant, collection_ids, knowledge_base_ids);
  depth := least(200, match_count * 2);

  for config in
    select distinct kb.text_search_config
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
      from public.search_embeddings(
             query_embedding, depth, collection_ids, knowledge_base_ids, metadata_filter,
             null, tenant) with ordinality as s (id, document_id, collection_id, knowledge_base_id,
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

comment on function public.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) is
  'Hybrid search over the caller''s tenant: full text (websearch syntax, each knowledge base''s language) and semantic similarity fused by reciprocal rank fusion. Returns each chunk with similarity, text_rank, semantic_position, text_position and the fused score, best first. Same scoping, validation and tenant rules as search_embeddings; weights >= 0 (not both 0), rrf_k >= 1.';

revoke all on function public.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) from public, anon;
grant execute on function public.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) to authenticated, service_role;
-- <<< sql/functions/public.hybrid_search.sql

-- public.most_used_documents as 0014 left it
-- >>> sql/functions/public.most_used_documents.sql
/* why: "which documents do our agents actually use?" per client, or per agent, from
   document_usage_stats. security invoker: RLS on document_usage_stats and documents limits the
   answer to the caller's tenant (the backend, bypassing RLS, passes client_id). stable and
   read-only, so PostgREST may serve it over GET. */
create or replace function public.most_used_documents(
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
language plpgsql
stable
security invoker
set search_path = ''
as $$
#variable_conflict use_column
declare
  tenant uuid;
begin
  if match_count is null or match_count < 1 or match_count > 1000 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('match_count must be between 1 and 1000, got %s', match_count);
  end if;
  tenant := private.request_client_id(most_used_documents.client_id);
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

comment on function public.most_used_documents(integer, uuid, uuid) is
  'The caller''s most used documents (by total chunk uses), optionally for one agent: usage_count, distinct chunks and agents, first and last use. match_count 1..1000 (default 10). The backend passes client_id.';

revoke all on function public.most_used_documents(integer, uuid, uuid) from public, anon;
grant execute on function public.most_used_documents(integer, uuid, uuid) to authenticated, service_role;
-- <<< sql/functions/public.most_used_documents.sql

-- public.record_chunk_usage as 0014 left it
-- >>> sql/functions/public.record_chunk_usage.sql
/* why: the RPC a worker or frontend calls to record chunk usage outside a search
   (`supabase.rpc('record_chunk_usage', {agent_id, chunk_ids})`). It resolves the one tenant the
   caller may write (own client for users, an explicit client for the backend) and delegates to
   private.record_chunk_usage, which does the atomic upsert. security invoker. */
create or replace function public.record_chunk_usage(
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
    private.request_client_id(record_chunk_usage.client_id),
    record_chunk_usage.agent_id,
    record_chunk_usage.chunk_ids,
    record_chunk_usage.execution_id
  )
$$;

comment on function public.record_chunk_usage(uuid, uuid[], uuid, uuid) is
  'Record that an agent used these chunks (one usage each; repeated ids count repeatedly). Users record in their own client; the backend passes client_id. Returns the number of chunks recorded. Errors: 42501 other tenant, PT404 unknown agent/execution, 22023 more than 1000 ids.';

revoke all on function public.record_chunk_usage(uuid, uuid[], uuid, uuid) from public, anon;
grant execute on function public.record_chunk_usage(uuid, uuid[], uuid, uuid) to authenticated, service_role;
-- <<< sql/functions/public.record_chunk_usage.sql

-- public.start_agent_execution as 0014 left it
-- >>> sql/functions/public.start_agent_execution.sql
/* why: the RPC that starts a run (`supabase.rpc('start_agent_execution', {agent_id, input})`).
   It creates a pending execution of an agent of the caller's client, as the caller:
   - API users: their own active client (private.request_client_id; another client_id is 42501),
     and the member role at least (viewers run nothing: 42501). user_id is the caller.
   - the backend (service_role) must name client_id (22004 otherwise); user_id stays null (a
     system run, e.g. scheduled).
   - an agent that is not in that client is PT404 (another tenant's agent included, which
     reveals nothing); an agent that is not active is RNE04; a client over its monthly token
     quota is RNE05 (both from the insert trigger, so direct inserts obey them too).
   security invoker: the insert goes through the table's grants and insert policy like any
   PostgREST insert; the quota check inside the trigger is the only definer part. */
create or replace function public.start_agent_execution(
  agent_id uuid,
  input jsonb default '{}'::jsonb,
  client_id uuid default null
)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  target uuid := private.request_client_id(start_agent_execution.client_id);
  result public.agent_executions;
begin
  if not private.request_is_backend() and private.current_client_id('member') is null then
    raise exception using
      errcode = '42501',
      message = 'starting an agent execution requires the member role';
  end if;
  if start_agent_execution.agent_id is null then
    raise exception using errcode = '22004', message = 'agent_id is required';
  end if;
  if start_agent_execution.input is null then
    raise exception using errcode = '22004', message = 'input is required (use {} for none)';
  end if;
  if not exists (
    select from public.agents as a
     where a.client_id = target and a.id = start_agent_execution.agent_id
  ) then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('agent %s not found', start_agent_execution.agent_id);
  end if;

  insert into public.agent_executions as e (client_id, agent_id, input)
  values (target, start_agent_execution.agent_id, start_agent_execution.input)
  returning e.* into result;
  return result;
end;
$$;

comment on function public.start_agent_execution(uuid, jsonb, uuid) is
  'Start a run of an agent: creates a pending execution in the caller''s client, started by the caller (members and admins; the backend passes client_id). Errors: 42501 viewer or other client, PT404 unknown agent, RNE04 agent not active, RNE05 monthly token quota reached, RNE06 invalid quota setting.';

revoke all on function public.start_agent_execution(uuid, jsonb, uuid) from public, anon;
grant execute on function public.start_agent_execution(uuid, jsonb, uuid) to authenticated, service_role;
-- <<< sql/functions/public.start_agent_execution.sql

-- public.cancel_agent_execution as 0014 left it
-- >>> sql/functions/public.cancel_agent_execution.sql
/* why: stop a run that is pending or running (status cancelled, completed_at stamped by the
   database; a finished one is RNE02). Who may cancel:
   - the user who started it (if still at least a member of its client) and admins of the
     client. That rule is the `agent_executions_update` policy together with the column grant
     `update (status)`, so a PostgREST PATCH setting status = cancelled obeys exactly the same
     rule, and its `with check (status = 'cancelled')` means users can do nothing else. An
     execution of the caller's client that the caller may not cancel is 42501; one that the
     caller cannot see (another client's) is PT404. Users cannot report tokens (42501 if they
     pass tokens_used): only the backend knows them;
   - the backend (private.request_is_backend: service_role or another role that bypasses RLS),
     naming the client, optionally with the final token total. Every other role is a user.
   security invoker: users go through grants, RLS and the transition trigger; the backend
   through private.update_agent_execution and the same trigger. */
create or replace function public.cancel_agent_execution(
  execution_id uuid,
  tokens_used bigint default null,
  client_id uuid default null
)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  target uuid := private.request_client_id(cancel_agent_execution.client_id);
  result public.agent_executions;
begin
  if private.request_is_backend() then
    return private.update_agent_execution(
      target, cancel_agent_execution.execution_id, 'cancelled',
      tokens_used => cancel_agent_execution.tokens_used
    );
  end if;

  if cancel_agent_execution.tokens_used is not null then
    raise exception using
      errcode = '42501',
      message = 'only the backend reports tokens_used';
  end if;
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

comment on function public.cancel_agent_execution(uuid, bigint, uuid) is
  'Cancel a pending or running execution: its starter (member or admin) or an admin of the client; the backend passes client_id and may pass the final tokens_used. Errors: 42501 not allowed to cancel it or tokens_used from a user, PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function public.cancel_agent_execution(uuid, bigint, uuid) from public, anon;
grant execute on function public.cancel_agent_execution(uuid, bigint, uuid) to authenticated, service_role;
-- <<< sql/functions/public.cancel_agent_execution.sql

-- public.record_agent_execution_progress as 0014 left it
-- >>> sql/functions/public.record_agent_execution_progress.sql
/* why: the worker's heartbeat. The first call moves a pending execution to running (the
   database stamps started_at); later calls keep it running. `output` replaces the stored
   output (the worker sends the whole partial result, not a patch) and `tokens_used` is the
   running total so far (never lower than the stored one: RNE03); null leaves either unchanged.
   A finished execution cannot be touched (RNE02).
   Only the backend (service_role) may call it, naming the client (22004 without it); an
   execution outside that client is PT404. security invoker: the rules live in the table's
   trigger, which binds every writer. */
create or replace function public.record_agent_execution_progress(
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
    private.request_client_id(record_agent_execution_progress.client_id),
    record_agent_execution_progress.execution_id,
    'running',
    output => record_agent_execution_progress.output,
    tokens_used => record_agent_execution_progress.tokens_used
  )
$$;

comment on function public.record_agent_execution_progress(uuid, jsonb, bigint, uuid) is
  'Worker only (service_role, with client_id): mark an execution running (started_at set on the first call) and store its partial output and running token total. Errors: PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function public.record_agent_execution_progress(uuid, jsonb, bigint, uuid) from public, anon, authenticated;
grant execute on function public.record_agent_execution_progress(uuid, jsonb, bigint, uuid) to service_role;
-- <<< sql/functions/public.record_agent_execution_progress.sql

-- public.complete_agent_execution as 0014 left it
-- >>> sql/functions/public.complete_agent_execution.sql
/* why: the worker finishes a running execution successfully: status completed, completed_at
   stamped by the database, final output and final token total (null keeps the stored value).
   Only a running execution can complete: a pending one is RNE01 (report progress first, which
   marks it running), a finished one RNE02.
   Only the backend (service_role) may call it, naming the client; security invoker, the table's
   trigger enforces the transition. */
create or replace function public.complete_agent_execution(
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
    private.request_client_id(complete_agent_execution.client_id),
    complete_agent_execution.execution_id,
    'completed',
    output => complete_agent_execution.output,
    tokens_used => complete_agent_execution.tokens_used
  )
$$;

comment on function public.complete_agent_execution(uuid, jsonb, bigint, uuid) is
  'Worker only (service_role, with client_id): running -> completed, with the final output and token total. Errors: PT404 unknown execution, RNE01 not running, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function public.complete_agent_execution(uuid, jsonb, bigint, uuid) from public, anon, authenticated;
grant execute on function public.complete_agent_execution(uuid, jsonb, bigint, uuid) to service_role;
-- <<< sql/functions/public.complete_agent_execution.sql

-- public.fail_agent_execution as 0014 left it
-- >>> sql/functions/public.fail_agent_execution.sql
/* why: the worker records that an execution failed, from pending (it could not even start) or
   running: status failed, `error` (required, non-blank) says why, completed_at is stamped by the
   database, tokens_used is the final total (null keeps the stored value).
   Only the backend (service_role) may call it, naming the client; security invoker, the table's
   trigger enforces the transition. */
create or replace function public.fail_agent_execution(
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
    private.request_client_id(fail_agent_execution.client_id),
    fail_agent_execution.execution_id,
    'failed',
    error => fail_agent_execution.error,
    tokens_used => fail_agent_execution.tokens_used
  );
end;
$$;

comment on function public.fail_agent_execution(uuid, text, bigint, uuid) is
  'Worker only (service_role, with client_id): pending or running -> failed, with the error text (required) and the final token total. Errors: 22004 no error text, PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function public.fail_agent_execution(uuid, text, bigint, uuid) from public, anon, authenticated;
grant execute on function public.fail_agent_execution(uuid, text, bigint, uuid) to service_role;
-- <<< sql/functions/public.fail_agent_execution.sql

-- public.start_investigation as before 0015
/* why: the worker claims a pending investigation: pending -> processing, and the database stamps
   started_at. Starting is a claim, so starting a row that is not pending fails (RNI01) instead
   of letting two workers process the same investigation. The row is locked (for update) before
   its status is read, so concurrent calls are serialized and exactly one succeeds.
   Granted to service_role only: users never start their own investigations.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.start_investigation(investigation_id uuid)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  current_status text;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = start_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', start_investigation.investigation_id);
  end if;
  if current_status <> 'pending' then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to processing',
                                  start_investigation.investigation_id, current_status),
      hint = 'Only a pending investigation can be started.';
  end if;
  update public.investigations as i
     set status = 'processing'
   where i.id = start_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.start_investigation(uuid) is
  'Worker (service_role): start a pending investigation (status processing; started_at set by the database). Returns the row. Errors: PT404 unknown id, RNI01 not pending.';

revoke all on function public.start_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function public.start_investigation(uuid) to service_role;

-- public.report_investigation_progress as before 0015
/* why: the worker reports progress while it runs; every update reaches the owner's browser
   through the supabase_realtime publication. progress is required and may not decrease (RNI02,
   from the workflow trigger); the other arguments are optional and a null keeps the stored value.
   `results` replaces the stored array (send the partial results found so far), so a retried call
   is idempotent. Reporting on an investigation that is not processing fails with RNI03, which
   also tells a worker that the owner cancelled it. The row is locked before its status is read.
   Granted to service_role only.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.report_investigation_progress(
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
declare
  current_status text;
  result public.investigations;
begin
  if report_investigation_progress.progress is null then
    raise exception using errcode = '22004', message = 'progress is required';
  end if;
  select i.status into current_status
    from public.investigations as i
   where i.id = report_investigation_progress.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found',
                                  report_investigation_progress.investigation_id);
  end if;
  if current_status <> 'processing' then
    raise exception using
      errcode = 'RNI03',
      message = pg_catalog.format('investigation %s is %s, not processing: its progress cannot change',
                                  report_investigation_progress.investigation_id, current_status),
      hint = case when current_status = 'pending' then 'Call start_investigation first.'
                  else 'The investigation has ended; stop working on it.' end;
  end if;
  update public.investigations as i
     set progress = report_investigation_progress.progress,
         current_phase = coalesce(report_investigation_progress.current_phase, i.current_phase),
         results = coalesce(report_investigation_progress.results, i.results),
         anomalies_found = coalesce(report_investigation_progress.anomalies_found, i.anomalies_found),
         total_records_analyzed = coalesce(report_investigation_progress.total_records_analyzed,
                                           i.total_records_analyzed)
   where i.id = report_investigation_progress.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) is
  'Worker (service_role): report progress (0..1, never decreasing) of a processing investigation, and optionally its current phase, partial results (replacing the stored array), anomalies found and records analyzed; null keeps a value. Returns the row. Errors: PT404 unknown id, RNI03 not processing (e.g. cancelled), RNI02 progress decreased, 23514 progress outside [0, 1] or results not an array, 22004 progress null.';

revoke all on function public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) from public, anon, authenticated, service_role;
grant execute on function public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) to service_role;

-- public.complete_investigation as before 0015
/* why: the worker finishes an investigation: processing -> completed with its summary and
   confidence score (and, optionally, the final results and counts; null keeps a value). The
   workflow trigger sets progress to 1 and completed_at. Only a processing investigation can be
   completed (RNI01), checked under a row lock. Granted to service_role only.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.complete_investigation(
  investigation_id uuid,
  summary text default null,
  confidence_score double precision default null,
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
declare
  current_status text;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = complete_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', complete_investigation.investigation_id);
  end if;
  if current_status <> 'processing' then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to completed',
                                  complete_investigation.investigation_id, current_status),
      hint = 'Only a processing investigation can be completed.';
  end if;
  update public.investigations as i
     set status = 'completed',
         summary = coalesce(complete_investigation.summary, i.summary),
         confidence_score = coalesce(complete_investigation.confidence_score, i.confidence_score),
         results = coalesce(complete_investigation.results, i.results),
         anomalies_found = coalesce(complete_investigation.anomalies_found, i.anomalies_found),
         total_records_analyzed = coalesce(complete_investigation.total_records_analyzed,
                                           i.total_records_analyzed)
   where i.id = complete_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) is
  'Worker (service_role): complete a processing investigation with its summary and confidence score (0..1), optionally final results and counts (null keeps a value). progress becomes 1 and completed_at is set by the database. Returns the row. Errors: PT404 unknown id, RNI01 not processing, 23514 confidence_score outside [0, 1].';

revoke all on function public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) from public, anon, authenticated, service_role;
grant execute on function public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) to service_role;

-- public.fail_investigation as before 0015
/* why: the worker records that an investigation failed, with the error text the owner will see:
   pending or processing -> failed; completed_at is set by the database. Failing an investigation
   that already ended fails (RNI01), checked under a row lock. The error text is required (22004)
   and not blank (22023); longer than 10000 characters is refused by investigations_error_chk.
   Granted to service_role only.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.fail_investigation(investigation_id uuid, error text)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  current_status text;
  result public.investigations;
begin
  if fail_investigation.error is null then
    raise exception using errcode = '22004', message = 'error is required';
  end if;
  if pg_catalog.btrim(fail_investigation.error) = '' then
    raise exception using errcode = '22023', message = 'error must not be blank';
  end if;
  select i.status into current_status
    from public.investigations as i
   where i.id = fail_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', fail_investigation.investigation_id);
  end if;
  if current_status not in ('pending', 'processing') then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to failed',
                                  fail_investigation.investigation_id, current_status),
      hint = 'Only a pending or processing investigation can fail.';
  end if;
  update public.investigations as i
     set status = 'failed',
         error = fail_investigation.error
   where i.id = fail_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.fail_investigation(uuid, text) is
  'Worker (service_role): mark a pending or processing investigation failed with an error text (completed_at set by the database). Returns the row. Errors: PT404 unknown id, RNI01 already ended, 22004 error null, 22023 error blank, 23514 error longer than 10000 characters.';

revoke all on function public.fail_investigation(uuid, text) from public, anon, authenticated, service_role;
grant execute on function public.fail_investigation(uuid, text) to service_role;

-- public.cancel_investigation as before 0015
/* why: the RPC an owner calls to stop their investigation
   (`supabase.rpc('cancel_investigation', {investigation_id})`); the backend may call it too.
   Owners have no UPDATE privilege on status (a direct PATCH could otherwise pick any status), so
   the update happens in private.cancel_investigation, a security definer function that re-checks
   ownership. This wrapper is what PostgREST exposes.
   security invoker: it only delegates. */
create or replace function public.cancel_investigation(investigation_id uuid)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.cancel_investigation(cancel_investigation.investigation_id)
$$;

comment on function public.cancel_investigation(uuid) is
  'Cancel a pending or processing investigation: its owner (a signed-in user of an active client) or service_role. completed_at is set by the database; a worker''s next progress report fails with RNI03. Returns the row. Errors: PT404 unknown id or not the caller''s own, RNI01 already ended.';

revoke all on function public.cancel_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function public.cancel_investigation(uuid) to authenticated, service_role;


notify pgrst, 'reload schema';
