-- depends: 0012.create-storage-policies
--
-- 0014 fail-closed-security
-- what: one fail-closed rule for "user or backend" and for the request's tenant
-- (private.request_is_backend, private.request_client_id, replacing private.search_client_id),
-- used by every function that branches on the caller; immediate revocation (banned or
-- soft-deleted auth users, suspended profiles: the new public.users.status); embedding_cache
-- written by the backend only, emptied once, its vectors' dimensions tied to the model key;
-- storage object names validated as a whole; worker-only RPCs executable by service_role only;
-- query embeddings whose single-precision norm is zero or not finite refused, NaN similarities
-- never returned.
-- why: the old rule trusted any role whose name was not anon/authenticated (a custom PostgREST
-- role wrote another tenant's usage, cancelled its investigations and read its quota), viewers
-- could poison members' query embeddings, `<own>/../<other>/x` passed the storage policy, and a
-- banned user kept reading until their JWT expired. See docs/roles.md.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

-- Suspending a user (admins of the tenant, or the backend) revokes their access at once.
alter table public.users
  add column status text not null default 'active'
    constraint users_status_chk check (status in ('active', 'suspended'));
comment on column public.users.status is
  'active | suspended. A suspended user gets nothing, own profile included, whatever their JWT says. Admins set it for other users of their tenant; the backend for anyone.';
grant update (status) on table public.users to authenticated;

-- >>> sql/functions/private.request_is_backend.sql
/* why: the one test of "is this request the backend?", decided by capability, never by name.
   The request's role is the role PostgREST (or act_as) switched to, `current_setting('role')`, or
   the login role when none was set (a direct backend connection). That GUC keeps its value
   inside security definer functions, where current_user is the function's owner, so the answer
   is the same wherever in a call chain it is asked.
   The backend is a role that may already read and write every tenant's rows itself: BYPASSRLS
   (service_role, hosted Supabase's postgres) or superuser. Letting such a role name the client a
   function acts on grants it nothing it does not have. Every other role, whatever its name (anon,
   authenticated, a custom PostgREST role inheriting authenticated, a role that merely inherits
   service_role's grants: BYPASSRLS is an attribute and is not inherited), is a user and is
   resolved through auth.uid() and public.users; a role this function does not find is a user too.
   security invoker: pg_roles is readable by everyone. stable: one answer per statement. */
create or replace function private.request_is_backend()
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(
    (select r.rolbypassrls or r.rolsuper
       from pg_catalog.pg_roles as r
      where r.rolname = coalesce(nullif(pg_catalog.current_setting('role', true), 'none'),
                                 session_user)),
    false)
$$;

comment on function private.request_is_backend() is
  'True when the request runs as a role that bypasses RLS (BYPASSRLS or superuser: service_role, the backend''s own login); false for every other role, known or not. The one rule behind every "user or backend" decision.';

revoke all on function private.request_is_backend() from public;
grant execute on function private.request_is_backend() to authenticated, service_role;
-- <<< sql/functions/private.request_is_backend.sql

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

-- >>> sql/functions/private.current_user_id.sql
/* why: auth.uid() says who signed the JWT, not whether that user may still act. Where a policy
   needs the caller's own identity without a tenant (a user reads their own profile, with or
   without a client), it uses this instead: auth.uid() if the auth user is neither banned
   (banned_until in the future) nor soft-deleted (deleted_at) and the profile is not suspended;
   null otherwise, so a revoked user loses even their own profile at once.
   security definer: it reads auth.users and public.users for the caller's own id only.
   Stable; policies wrap it as `(select ...)` so it runs once per statement (two key probes). */
create or replace function private.current_user_id()
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select u.id
  from public.users as u
  join auth.users as a on a.id = u.id
  where u.id = auth.uid()
    and u.status = 'active'
    and a.deleted_at is null
    and (a.banned_until is null or a.banned_until <= pg_catalog.now())
$$;

comment on function private.current_user_id() is
  'auth.uid() when that user has a profile and is neither banned, soft-deleted nor suspended; null otherwise.';

revoke all on function private.current_user_id() from public;
grant execute on function private.current_user_id() to authenticated, service_role;
-- <<< sql/functions/private.current_user_id.sql

-- >>> sql/functions/private.request_client_id.sql
/* why: every RPC that acts on one tenant resolves that tenant here, with one fail-closed rule:
   - the backend (private.request_is_backend(): a role that bypasses RLS) has no tenant of its own
     and must name one (22004 if it does not); the functions then filter on it explicitly, so
     even the backend never receives or writes a row of another tenant;
   - every other role is a user: their own active client (private.current_client_id, which also
     refuses banned, soft-deleted and suspended users), always. Naming another client is 42501,
     and a user with no active client (no JWT, no profile, no client, suspended) is 42501 too.
   security invoker: it reads only the caller's own profile through private.current_client_id. */
create or replace function private.request_client_id(requested_client_id uuid)
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  own uuid;
begin
  if private.request_is_backend() then
    if requested_client_id is null then
      raise exception using
        errcode = '22004',
        message = pg_catalog.format('client_id is required when calling as %s',
                                    coalesce(nullif(pg_catalog.current_setting('role', true), 'none'),
                                             session_user)),
        hint = 'The backend has no tenant of its own: pass the client to act on.';
    end if;
    return requested_client_id;
  end if;
  own := private.current_client_id('viewer');
  if own is null then
    raise exception using
      errcode = '42501',
      message = 'the caller belongs to no active client';
  end if;
  if requested_client_id is not null and requested_client_id <> own then
    raise exception using
      errcode = '42501',
      message = 'client_id must be the caller''s own client';
  end if;
  return own;
end;
$$;

comment on function private.request_client_id(uuid) is
  'The one tenant a request may act on: the client the backend names (a role that bypasses RLS; 22004 if none), or, for every other role, the user''s own active client (42501 if none or if another is named).';

revoke all on function private.request_client_id(uuid) from public;
grant execute on function private.request_client_id(uuid) to authenticated, service_role;
-- <<< sql/functions/private.request_client_id.sql

-- >>> sql/functions/private.storage_object_client_id.sql
/* why: a tenant's files are named `<client_id>/<upload uuid>/<file name>` in its bucket, and the
   storage policies must not bet on how a backend resolves odd names (`<own>/../<other>/x.pdf`,
   `<own>//x`, `/<own>/x`, `<OWN>/...`). This function accepts exactly the layout and returns
   the tenant of a well-formed name, null for anything else, so a policy comparing it with the
   caller's client matches nothing for a malformed name:
   - exactly three segments; the first two are uuids in canonical lowercase form (uuid::text),
     so there is one spelling per folder;
   - the file name: 1 to 255 characters, not `.` or `..`, no `/`, `\` or control character
     (U+0001-U+001F, U+007F), no leading or trailing space.
   renum_db.storage.check_object_name applies the same rule before uploading.
   security invoker, immutable: it looks at its argument only. */
create or replace function private.storage_object_client_id(name text)
returns uuid
language sql
immutable
security invoker
set search_path = ''
as $$
  select case
    when storage_object_client_id.name
         ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[^/\\\x01-\x1f\x7f]{1,255}$'
     and pg_catalog.split_part(storage_object_client_id.name, '/', 3) not in ('.', '..')
     and pg_catalog.split_part(storage_object_client_id.name, '/', 3) !~ '^ | $'
    then pg_catalog.split_part(storage_object_client_id.name, '/', 1)::uuid
  end
$$;

comment on function private.storage_object_client_id(text) is
  'The client id of a well-formed object name <client_id>/<uuid>/<file name> (lowercase uuids, file name of 1-255 characters, not . or .., no slash, backslash, control character, leading or trailing space); null for any other name.';

revoke all on function private.storage_object_client_id(text) from public;
grant execute on function private.storage_object_client_id(text) to authenticated, service_role;
-- <<< sql/functions/private.storage_object_client_id.sql

-- >>> sql/functions/private.record_chunk_usage.sql
/* why: seed 000's document_usage_stats: which agent used which chunk, how often, first and
   last. One row per (client, chunk, agent), incremented atomically with insert ... on conflict
   do update, so concurrent writers never lose an increment. Rows are upserted in chunk-id order,
   so two transactions recording overlapping chunks take their row locks in the same order and
   cannot deadlock. Chunk ids that are unknown or of another tenant are skipped; the agent (and
   execution, if given) must belong to the client, else PT404.
   security definer: API users read usage rows but may not write them directly (no grant), so
   only this function writes them. Because it bypasses RLS it re-checks the tenant itself: unless
   the request is the backend (private.request_is_backend: a role that bypasses RLS), the client
   must be the caller's own active client, whatever the request's role is called.
   Called through public.record_chunk_usage and the search functions. */
create or replace function private.record_chunk_usage(
  client_id uuid,
  agent_id uuid,
  chunk_ids uuid[],
  execution_id uuid default null
)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  recorded integer;
begin
  if record_chunk_usage.client_id is null then
    raise exception using errcode = '22004', message = 'client_id is required';
  end if;
  if not private.request_is_backend()
     and private.current_client_id('viewer') is distinct from record_chunk_usage.client_id then
    raise exception using
      errcode = '42501',
      message = 'usage can only be recorded in the caller''s own client';
  end if;
  if record_chunk_usage.agent_id is null then
    raise exception using errcode = '22004', message = 'agent_id is required';
  end if;
  if pg_catalog.cardinality(record_chunk_usage.chunk_ids) > 1000 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('at most 1000 chunk ids per call, got %s',
                                  pg_catalog.cardinality(record_chunk_usage.chunk_ids));
  end if;
  if not exists (
    select from public.agents as a
     where a.client_id = record_chunk_usage.client_id and a.id = record_chunk_usage.agent_id
  ) then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('agent %s not found in this client', record_chunk_usage.agent_id);
  end if;
  if record_chunk_usage.execution_id is not null and not exists (
    select from public.agent_executions as e
     where e.client_id = record_chunk_usage.client_id
       and e.id = record_chunk_usage.execution_id
       and e.agent_id = record_chunk_usage.agent_id
  ) then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('execution %s of agent %s not found in this client',
                                  record_chunk_usage.execution_id, record_chunk_usage.agent_id);
  end if;
  if coalesce(pg_catalog.cardinality(record_chunk_usage.chunk_ids), 0) = 0 then
    return 0;
  end if;

  insert into public.document_usage_stats as s
    (client_id, document_id, chunk_id, agent_id, last_execution_id,
     usage_count, first_used_at, last_used_at)
  select c.client_id, c.document_id, c.id, record_chunk_usage.agent_id,
         record_chunk_usage.execution_id, u.uses, pg_catalog.now(), pg_catalog.now()
    from (select x.id, pg_catalog.count(*) as uses
            from pg_catalog.unnest(record_chunk_usage.chunk_ids) as x (id)
           where x.id is not null
           group by x.id) as u
    join public.document_chunks as c
      on c.client_id = record_chunk_usage.client_id and c.id = u.id
   order by c.id
  on conflict on constraint document_usage_stats_chunk_agent_key do update
     set usage_count = s.usage_count + excluded.usage_count,
         last_used_at = greatest(s.last_used_at, excluded.last_used_at),
         last_execution_id = coalesce(excluded.last_execution_id, s.last_execution_id);
  get diagnostics recorded = row_count;
  return recorded;
end;
$$;

comment on function private.record_chunk_usage(uuid, uuid, uuid[], uuid) is
  'Records that an agent (and optionally one of its executions) used these chunks of a client: upserts one document_usage_stats row per chunk, incrementing usage_count atomically. Returns the number of chunks recorded.';

revoke all on function private.record_chunk_usage(uuid, uuid, uuid[], uuid) from public;
grant execute on function private.record_chunk_usage(uuid, uuid, uuid[], uuid) to authenticated, service_role;
-- <<< sql/functions/private.record_chunk_usage.sql

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

-- >>> sql/functions/private.enforce_monthly_token_quota.sql
/* why: a client may cap the LLM tokens its agents consume per calendar month (UTC) with
   `clients.settings -> 'monthly_token_limit'` (a non-negative integer; absent or null = no cap).
   The rule is deliberately simple and exact:
       used = sum(tokens_used) of the client's executions whose created_at falls in the current
              UTC calendar month (the month of now(), the transaction's time);
       a new execution is refused (RNE05) when used >= limit, so a limit of 0 forbids every run.
   Tokens are charged to the month in which their execution was created, whenever they are
   reported; the views public.client_monthly_token_usage / agent_monthly_token_usage bucket
   the same way, so what the quota refuses is what the usage views show. It is a gate on
   starting, not a hard cap on consumption: executions already running may take the month past
   the limit, and the next start is then refused.
   Concurrency: starting adds no tokens, so concurrent starts cannot jointly overrun the limit
   and need not wait for one another. The client row is locked FOR SHARE while checking, so the
   limit cannot change between the check and the commit of the new execution (an admin's
   update of settings waits, or the start waits for it and then reads the new limit), while
   concurrent starts share the lock. The sum is read with a fresh snapshot in READ COMMITTED,
   so tokens committed before the check count.
   A limit that is not a non-negative integer raises RNE06: a misconfigured quota is loud rather
   than silently unlimited.
   security definer: members cannot lock the client row (that needs UPDATE rights on clients)
   and the sum must cover every execution of the client. Because it bypasses RLS it re-checks
   the tenant: unless the request is the backend (private.request_is_backend), whatever the
   request's role is called, the client must be the caller's own client at role member,
   otherwise it does nothing at all (the insert policy, checked after BEFORE triggers, rejects
   that row), so it never locks or reveals another tenant's quota. */
create or replace function private.enforce_monthly_token_quota(client_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  raw_limit jsonb;
  token_limit numeric;
  utc_month timestamp := pg_catalog.date_trunc('month', pg_catalog.timezone('UTC', pg_catalog.now()));
  -- month arithmetic on a timestamp without time zone, so the session TimeZone cannot shift it
  month_start timestamptz := pg_catalog.timezone('UTC', utc_month);
  month_end timestamptz := pg_catalog.timezone('UTC', utc_month + interval '1 month');
  used bigint;
begin
  if not private.request_is_backend()
     and private.current_client_id('member') is distinct from enforce_monthly_token_quota.client_id then
    return;
  end if;

  select c.settings -> 'monthly_token_limit' into raw_limit
    from public.clients as c
   where c.id = enforce_monthly_token_quota.client_id
     for share;
  if raw_limit is null or raw_limit = 'null'::jsonb then
    return;
  end if;
  if pg_catalog.jsonb_typeof(raw_limit) = 'number' then
    token_limit := raw_limit::numeric;
  end if;
  if token_limit is null or token_limit < 0 or token_limit <> pg_catalog.trunc(token_limit) then
    raise exception using
      errcode = 'RNE06',
      message = pg_catalog.format('clients.settings.monthly_token_limit must be a non-negative integer, not %s',
                                  raw_limit),
      hint = 'An admin of the client fixes settings; remove the key for no limit.';
  end if;

  select coalesce(sum(e.tokens_used), 0) into used
    from public.agent_executions as e
   where e.client_id = enforce_monthly_token_quota.client_id
     and e.created_at >= month_start
     and e.created_at < month_end;
  if used >= token_limit then
    raise exception using
      errcode = 'RNE05',
      message = pg_catalog.format('monthly token quota exceeded: %s of %s tokens used in %s',
                                  used, token_limit, pg_catalog.to_char(utc_month, 'YYYY-MM')),
      detail = pg_catalog.format('client %s, month starting %s UTC',
                                 enforce_monthly_token_quota.client_id, utc_month),
      hint = 'Wait for the next calendar month (UTC) or raise clients.settings.monthly_token_limit.';
  end if;
end;
$$;

comment on function private.enforce_monthly_token_quota(uuid) is
  'Raises RNE05 when the client''s tokens_used over executions created this UTC month reach clients.settings.monthly_token_limit (RNE06 if that setting is not a non-negative integer). Locks the client row FOR SHARE. Called by the insert trigger of agent_executions.';

revoke all on function private.enforce_monthly_token_quota(uuid) from public;
grant execute on function private.enforce_monthly_token_quota(uuid) to authenticated, service_role;
-- <<< sql/functions/private.enforce_monthly_token_quota.sql

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

-- Nothing calls it any more: every caller above now resolves through private.request_client_id,
-- and schema private is not exposed, so no API client can depend on it:
-- squawk-ignore ban-drop-function
drop function private.search_client_id(uuid);
-- retired: sql/functions/private.search_client_id.sql

-- Profiles: a revoked user no longer sees even their own profile.
drop policy users_update on public.users;
drop policy users_select on public.users;
-- >>> sql/policies/users.sql.j2 table=users
/* why: profiles. Everyone sees their own profile (so a frontend can tell "no organisation yet"),
   unless banned, soft-deleted or suspended (private.current_user_id: revocation is immediate),
   and users of a tenant see each other. Admins change the role of other users of their tenant
   and suspend or reinstate them (status), never their own (no self-promotion, no locking the
   last admin out by accident); column privileges limit that update to `role` and `status`. Profiles are created by the auth.users trigger and
   removed with the auth user, so API users neither insert nor delete them. */
alter table public.users enable row level security;
alter table public.users force row level security;

create policy users_select on public.users
  for select to authenticated
  using (
    id = (select private.current_user_id())
    or client_id = (select private.current_client_id('viewer'))
  );

create policy users_update on public.users
  for update to authenticated
  using (
    client_id = (select private.current_client_id('admin'))
    and id <> (select auth.uid())
  )
  with check (
    client_id = (select private.current_client_id('admin'))
    and id <> (select auth.uid())
  );
-- <<< sql/policies/users.sql.j2 table=users

-- embedding_cache: only the backend writes. Any row may have been written by a user before this
-- migration (a viewer could pick the vector stored for a text), so the cache starts empty: it is
-- a cache, a miss costs one embedding call. Emptied first, so the new check validates at once.
revoke insert on table public.embedding_cache from authenticated;
drop policy embedding_cache_insert on public.embedding_cache;
drop policy embedding_cache_select on public.embedding_cache;
truncate table public.embedding_cache;
-- The table was just emptied: validating the new check scans nothing.
alter table public.embedding_cache
  -- squawk-ignore constraint-missing-not-valid
  add constraint embedding_cache_dimensions_chk check (
    model ~ ':[1-9][0-9]{0,4}$'
    and extensions.vector_dims(embedding) = substring(model from ':([1-9][0-9]{0,4})$')::integer
  );
comment on table public.embedding_cache is
  'Embeddings already computed, per client, keyed by (model "<name>:<dimensions>", sha256 of the exact text), so repeated chunks and queries never call the embedding API twice. Per client on purpose: a shared cache would tell one tenant whether another embedded a given text. Users of the client read; only the backend writes (a user-written vector would steer other users'' searches).';
comment on constraint embedding_cache_dimensions_chk on public.embedding_cache is
  'model ends with :<dimensions> and the embedding has exactly that many dimensions.';
-- >>> sql/policies/tenant_table.sql.j2 table=embedding_cache select=viewer insert=none update=none delete=none
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for embedding_cache: select=viewer, insert=none, update=none, delete=none. */
alter table public.embedding_cache enable row level security;
alter table public.embedding_cache force row level security;
create policy embedding_cache_select on public.embedding_cache
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));
-- <<< sql/policies/tenant_table.sql.j2 table=embedding_cache select=viewer insert=none update=none delete=none

-- Storage: the whole object name is validated, not only its first folder.
drop policy renum_documents_objects_delete on storage.objects;
drop policy renum_documents_objects_update on storage.objects;
drop policy renum_documents_objects_insert on storage.objects;
drop policy renum_documents_objects_select on storage.objects;
-- >>> sql/policies/storage_bucket.sql.j2 bucket=documents select=viewer insert=member update=member delete=member
/* why: files of a tenant live in the private Storage bucket 'documents' under a folder named
   after the tenant: '<client_id>/<uuid>/<file name>'. Supabase Storage runs every API call as the
   caller's JWT role against storage.objects, so these policies are what keeps one tenant's files
   from another's, exactly like the policies on public tables: the object name must be well formed
   as a whole (private.storage_object_client_id: lowercase uuids, no `..`, `.` or empty segment,
   no leading slash; null otherwise) and its tenant must be the caller's client id, resolved from
   public.users by private.current_client_id(min_role) (null, so nothing matches, for no profile,
   no client, an inactive client, a revoked user or a role too low).
   storage.objects is shared with every other app of the project, so each policy names the app
   and the bucket and tests bucket_id first: it grants nothing in any other bucket, and adds
   nothing to, nor takes anything from, other apps' policies. No policy for anon (private bucket)
   and none for service_role (bypasses RLS: the backend). Both `using` and `with check` on update
   keep a move (a rename of `name`) inside the caller's own folder of this bucket.
   Rendered for bucket documents: select=viewer, insert=member, update=member, delete=member. */
create policy renum_documents_objects_select on storage.objects
  for select to authenticated
  using (
    bucket_id = 'documents'
    and private.storage_object_client_id(name) = (select private.current_client_id('viewer'))
  );

create policy renum_documents_objects_insert on storage.objects
  for insert to authenticated
  with check (
    bucket_id = 'documents'
    and private.storage_object_client_id(name) = (select private.current_client_id('member'))
  );

create policy renum_documents_objects_update on storage.objects
  for update to authenticated
  using (
    bucket_id = 'documents'
    and private.storage_object_client_id(name) = (select private.current_client_id('member'))
  )
  with check (
    bucket_id = 'documents'
    and private.storage_object_client_id(name) = (select private.current_client_id('member'))
  );

create policy renum_documents_objects_delete on storage.objects
  for delete to authenticated
  using (
    bucket_id = 'documents'
    and private.storage_object_client_id(name) = (select private.current_client_id('member'))
  );
-- <<< sql/policies/storage_bucket.sql.j2 bucket=documents select=viewer insert=member update=member delete=member

notify pgrst, 'reload schema';
