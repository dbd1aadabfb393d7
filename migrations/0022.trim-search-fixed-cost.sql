-- depends: 0021.tighten-hybrid-search
--
-- 0022 trim-search-fixed-cost
-- what: the fixed cost of a search call, for the small tenants whose whole search is a 0.2 ms
--       exact scan:
--       - private.current_client_id is memoised per statement (transaction-local renum.caller,
--         stamped with the caller and statement_timestamp()): every RLS initplan after the first
--         reuses the answer (4 us instead of 35 us); revocation still applies from the next
--         statement; forced generic plans (re-planning locked every index of auth.users);
--       - private.chunk_search_route reads its session cache first: a tenant known to hold at
--         most the exact limit is ranked exactly with no registry probe (two relation locks and a
--         policy check fewer); the document-scope count is its own statement, so its index is no
--         longer locked by calls without a document scope (the big tenant's 16th lock);
--       - public.search_embeddings and backend.search_embeddings in PL/pgSQL (PostgreSQL 16
--         re-plans a SQL function's query on every call);
--       - private.search_embeddings ranks ids first on every route and joins the winners by key
--         (the exact route's one statement sorted whole rows, and its kept plan scanned documents
--         once per result row while that table is small).
-- why: issue 12: a 100-row tenant's search cost 2.5x the bare exact scan of its rows (target
--       1.5x), and the shared-index route took 16 relation locks (the fast path holds 16, one of
--       them the measuring query's own). Signatures, results and SQLSTATEs are unchanged; only
--       functions change: safe on a live database.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

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
   users.role is the enum public.user_role (0015); its rank is taken from its text.
   language plpgsql (0018, issue 12): a security definer SQL function is never inlined, and before
   PostgreSQL 18 it re-plans its query on every call; PL/pgSQL keeps the plan for the session
   (forced generic: the one parameter is the caller's id, and re-planning locked every index of
   auth.users).
   Memoised per statement (0022, issue 12): a search evaluated it five times per request (the
   wrapper's tenant check, then one initplan per table under RLS: registry, chunks, documents,
   collections), 35 us each, about 0.18 ms of a 0.5 ms search of a 100-row tenant. The first call
   of a statement runs the lookup and keeps the answer (client and role, or none) in the
   transaction-local setting renum.caller, stamped with the caller's id and the statement's start
   (statement_timestamp()); later calls of the same statement with the same caller reuse it (4 us).
   So revocation still applies from the next statement, a change of claims is a different
   caller, and the role check (min_role) is made on every call. The stamp is not a secret: a session
   that can run arbitrary SQL can forge renum.caller exactly as it can forge request.jwt.claims, the
   setting auth.uid() trusts; API requests (PostgREST, renum_db) cannot set either. Transaction-local,
   so a pooled connection never carries it to the next request. */
create or replace function private.current_client_id(min_role text default 'viewer')
returns uuid
language plpgsql
stable
security definer
set search_path = ''
set plan_cache_mode = 'force_generic_plan'
as $$
declare
  caller uuid := auth.uid();
  stamp text;
  cached text;
  own uuid;
  own_role text;
begin
  if caller is null then
    return null;
  end if;
  stamp := caller::text || '@' || pg_catalog.statement_timestamp()::text;
  cached := pg_catalog.current_setting('renum.caller', true);
  if cached is not null and pg_catalog.split_part(cached, '/', 1) = stamp then
    own := nullif(pg_catalog.split_part(cached, '/', 2), '')::uuid;
    own_role := pg_catalog.split_part(cached, '/', 3);
  else
    select u.client_id, u.role::text
      into own, own_role
      from public.users as u
      join public.clients as c on c.id = u.client_id
      join auth.users as a on a.id = u.id
     where u.id = caller
       and u.status = 'active'
       and c.status = 'active'
       and a.deleted_at is null
       and (a.banned_until is null or a.banned_until <= pg_catalog.now());
    -- An assignment, not PERFORM: a simple expression skips the executor start of a query.
    cached := pg_catalog.set_config('renum.caller',
                                    stamp || '/' || coalesce(own::text, '') || '/'
                                    || coalesce(own_role, ''),
                                    true);
  end if;
  if own is null
     or pg_catalog.array_position(array['viewer', 'member', 'admin'], own_role)
        < pg_catalog.array_position(array['viewer', 'member', 'admin'], min_role)
     or pg_catalog.array_position(array['viewer', 'member', 'admin'], min_role) is null then
    return null;
  end if;
  return own;
end;
$$;

comment on function private.current_client_id(text) is
  'The calling user''s client id if the client is active, the user is neither banned, soft-deleted nor suspended, and the user''s role is at least min_role (viewer < member < admin); null otherwise. Used by RLS policies and client_id defaults.';

revoke all on function private.current_client_id(text) from public, anon, authenticated, service_role;
grant execute on function private.current_client_id(text) to authenticated, service_role;
-- <<< sql/functions/private.current_client_id.sql

-- >>> sql/functions/private.chunk_search_route.sql
/* why: one place decides how a search finds a tenant's nearest chunks (private.search_embeddings):
   - 'exact': rank every candidate by exact distance. Right by construction, and the cheapest plan
     for few rows (since 0019 the vectors are stored inline: about 2 us per 1536-d row instead of
     10 us through TOAST). Chosen when the tenant, or the filtered subset, holds at most
     renum.search_exact_max_rows rows (default 1000).
   - 'tenant_index': walk the tenant's own partial HNSW index (registry
     private.tenant_chunk_indexes, state 'ready'). Its graph holds only the tenant's rows, so
     recall does not depend on the tenant's share of the table.
   - 'shared_index': walk the shared HNSW index filtering to the tenant. Only when the tenant's
     share of the table is at least renum.search_shared_min_share (default 0.5): below that the
     filtered walk spends its budget in other tenants' parts of the graph (issue 12: recall 0.87
     with queries at 0.0 for a 6% tenant).
   - otherwise 'exact' again: a tenant above the exact limit with a small share that is not
     promoted is searched exactly (right, slower); `renum-db tenant-index status` lists it as due
     for promotion.
   The checks run cheapest first, each a separate statement so that a call locks only the
   relations of the checks it reaches (0019, issue 12: the single CASE statement of 0018 locked
   the registry, the table and the fifteen catalog relations behind pg_stats on every call):
   the session cache below, first (0022: a tenant it knows to hold at most exact_max rows is
   ranked exactly with no statement at all, promoted or not: an exact scan of so few rows is
   right and the cheapest plan; this saved a registry probe and two relation locks per call of a
   small tenant); the registry (one primary-key probe, never cached: a promotion or demotion
   applies to the next call of a tenant above the limit); the tenant's rows, counted up to exact_max + 1 (an index scan of the (client_id, id)
   key): a small tenant is ranked exactly, filtered or not; for a larger tenant, a document scope
   without a metadata filter is counted, bounded, through the document key (statistics cannot say
   how many rows a scope keeps; a small scope is ranked exactly), while a metadata filter goes to
   the walk, which falls back to the exact scan if it yields too few rows (counting it read a
   heap page per row); only a tenant above the limit and not promoted needs its share of the
   table, from the planner statistics (private.chunk_tenant_estimate). The count
   and the share are kept for 60 seconds in a session setting (renum.chunk_route_<client id>):
   they cost 0.2 ms (100 rows) to 1 ms (1,000 rows) per call, and a tenant crossing the limit
   is served by the previous plan for at most a minute, which is still right (an exact scan) or
   a walk. The cached values can only change which plan serves a tenant; RLS and the explicit
   tenant predicate still decide which rows are seen. Before the first ANALYZE there is no share: such a tenant is
   walked through the shared index (the plan of 0007).
   language plpgsql: its statements keep their plans per session. volatile: it writes the cache.
   security invoker: the counts run under the caller's RLS, so a user asking about another
   tenant counts nothing and gets 'exact'. */
create or replace function private.chunk_search_route(
  client_id uuid,
  document_ids uuid[] default null,
  metadata_filter jsonb default null
)
returns text
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  exact_max integer := coalesce(
    nullif(pg_catalog.current_setting('renum.search_exact_max_rows', true), '')::integer, 1000);
  min_share double precision := coalesce(
    nullif(pg_catalog.current_setting('renum.search_shared_min_share', true), '')
      ::double precision, 0.5);
  cache_key text;
  cached text;
  tenant_rows bigint;
  share_text text;
  share double precision;
  promoted boolean;
begin
  cache_key := 'renum.chunk_route_' || pg_catalog.replace(client_id::text, '-', '');
  cached := pg_catalog.current_setting(cache_key, true);
  if cached like '%@%@%@%'
     and pg_catalog.split_part(cached, '@', 2) = (exact_max + 1)::text
     and pg_catalog.split_part(cached, '@', 4)::double precision
         > extract(epoch from pg_catalog.clock_timestamp()) then
    tenant_rows := pg_catalog.split_part(cached, '@', 1)::bigint;
    if tenant_rows <= exact_max then
      return 'exact';
    end if;
    share_text := pg_catalog.split_part(cached, '@', 3);
  else
    cached := null;
  end if;
  promoted := exists (select
                        from private.tenant_chunk_indexes as t
                       where t.client_id = chunk_search_route.client_id
                         and t.state = 'ready');
  if promoted and document_ids is null and metadata_filter is null then
    return 'tenant_index';
  end if;
  if cached is null then
    select pg_catalog.count(*) into tenant_rows
      from (select
              from public.document_chunks as c
             where c.client_id = chunk_search_route.client_id
             limit exact_max + 1) as bounded;
    share_text := 'n';
  end if;
  if tenant_rows > exact_max and share_text = 'n' and not promoted then
    select e.share into share from private.chunk_tenant_estimate(client_id) as e;
    share_text := coalesce(share::text, '');
    cached := null;
  end if;
  if cached is null then
    perform pg_catalog.set_config(
      cache_key,
      pg_catalog.concat_ws('@', tenant_rows, exact_max + 1, share_text,
                           extract(epoch from pg_catalog.clock_timestamp()) + 60),
      false);
  end if;
  if tenant_rows <= exact_max then
    return 'exact';
  end if;
  -- A document scope without a metadata filter is counted, bounded, through the
  -- (client_id, document_id, chunk_index) key alone: a small scope is ranked exactly. A
  -- metadata filter is not counted: that would read a heap page per row of the tenant until
  -- exact_max + 1 matches (measured 24-122 ms for a filter keeping 10% of 4k-154k rows); the walk
  -- runs with the filter and falls back to the exact scan when it yields too few rows.
  -- (Nested, not one condition: a subquery in the IF's expression is part of its plan, whose
  -- index the executor locks on every call even when the subquery is skipped.)
  if document_ids is not null and metadata_filter is null then
    if (select pg_catalog.count(*)
          from (select
                  from public.document_chunks as c
                 where c.client_id = chunk_search_route.client_id
                   and c.document_id = any (chunk_search_route.document_ids)
                 limit exact_max + 1) as bounded) <= exact_max then
      return 'exact';
    end if;
  end if;
  if promoted then
    return 'tenant_index';
  end if;
  share := nullif(share_text, '')::double precision;
  if share is null or share >= min_share then
    return 'shared_index';
  end if;
  return 'exact';
end;
$$;

comment on function private.chunk_search_route(uuid, uuid[], jsonb) is
  'How private.search_embeddings searches one client: exact (at most renum.search_exact_max_rows rows in scope), tenant_index (the client''s own HNSW index, when promoted) or shared_index (the shared HNSW index, when the client holds at least renum.search_shared_min_share of the rows). See docs/retrieval.md.';

revoke all on function private.chunk_search_route(uuid, uuid[], jsonb) from public;
grant execute on function private.chunk_search_route(uuid, uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.chunk_search_route.sql

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
   may record usage. language plpgsql (0022, issue 12), although it is one statement: PostgreSQL 16 re-plans the
   query of a non-inlined SQL function on every call; PL/pgSQL keeps the plan (measured 0.06 ms
   of a 0.5 ms search of a 100-row tenant, with private.current_client_id memoised). */
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
language plpgsql
volatile
security invoker
set search_path = ''
set plan_cache_mode = 'force_generic_plan'
as $$
begin
  return query
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
           search_embeddings.usage_execution_id);
end;
$$;

comment on function public.search_embeddings(real[], integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) is
  'Semantic search over the caller''s tenant: the match_count (1..200, default 5) chunks nearest to query_embedding (1536 numbers) by cosine similarity, best first, optionally within collection_ids / knowledge_base_ids, whose metadata contains metadata_filter, and with similarity >= min_similarity. usage_agent_id (and usage_execution_id) record the returned chunks as used by that agent. Errors: 42501 no active client, 22004 missing embedding, 22023 wrong dimension / zero vector / bad match_count, metadata_filter or min_similarity, PT404 unknown usage agent.';

revoke all on function public.search_embeddings(real[], integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function public.search_embeddings(real[], integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) to authenticated;
-- <<< sql/functions/public.search_embeddings.sql

-- >>> sql/functions/backend.search_embeddings.sql
/* why: the backend's semantic search (a worker, the Python API): it holds a pgvector value
   (renum_db.vector.Vector, or '[...]'::extensions.vector) and acts for one client it names
   (22004 without it). Not in an exposed schema, so browsers never see it; callable over a
   direct connection as service_role, or over PostgREST with the service key if a project adds
   `backend` to its exposed schemas (Accept-Profile / supabase-js `.schema('backend')`).
   Same search, validation and usage recording as public.search_embeddings
   (private.search_embeddings). security invoker; volatile because it may record usage. language plpgsql (0022, issue 12), although it is one statement: PostgreSQL 16 re-plans the
   query of a non-inlined SQL function on every call; PL/pgSQL keeps the plan (measured 0.06 ms
   of a 0.5 ms search of a 100-row tenant, with private.current_client_id memoised). */
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
language plpgsql
volatile
security invoker
set search_path = ''
set plan_cache_mode = 'force_generic_plan'
as $$
begin
  return query
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
           search_embeddings.usage_execution_id);
end;
$$;

comment on function backend.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) is
  'Backend (service_role): semantic search over the chunks of client_id (required, 22004), as public.search_embeddings. query_embedding is an extensions.vector.';

revoke all on function backend.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) to service_role;
-- <<< sql/functions/backend.search_embeddings.sql

-- >>> sql/functions/private.search_embeddings.sql
/* why: semantic search over one tenant's chunks, right for every tenant size.
   The common recipe (order by embedding <=> query limit k over an HNSW index, RLS filtering the
   rows) fails small tenants: pgvector filters after the index scan, so a tenant holding 0.2% of
   the rows gets almost nothing back. This function decides the plan per call:
   - its callers resolve the one tenant to search (public.search_embeddings: the user's own
     client; backend.search_embeddings: the client the backend names) and it puts an explicit
     `client_id = <tenant>` predicate beside RLS, so the planner sees the tenant;
   - private.chunk_search_route chooses the plan from the tenant's size and share of the table
     (planner statistics) and its per-tenant index (registry private.tenant_chunk_indexes):
     'exact' ranks every candidate by exact cosine distance through the tenant's btree index
     (recall 1.0; written as extensions.cosine_distance(...) so no HNSW index is used);
     'tenant_index' walks the tenant's own partial HNSW index; 'shared_index' walks the shared
     one filtering to the tenant (private.nearest_chunks). A walk takes 4 x match_count
     candidates (at least 40) and keeps the match_count nearest by exact distance; if that
     yields fewer than match_count rows (a very selective filter), the exact scan runs instead.
     See docs/retrieval.md.
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
   the only places that decide the tenant. Every route ranks first (ids and distances only) and then joins the winners to their chunk,
   document and collection by primary key (0022): the one-statement exact path of 0019 sorted
   whole rows and, with a kept generic plan, joined documents by a sequential scan per result
   row (the plan a small documents table gets). */
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
-- [retrieval, issue 12] generic plans: planning these statements (seven indexes on
-- document_chunks) costs more than running them for a small tenant (0.55-0.9 ms against
-- 0.2-0.3 ms); every statement filters on client_id = <one tenant>, which a generic plan serves.
set plan_cache_mode = 'force_generic_plan'
as $$
#variable_conflict use_column
declare
  doc_ids uuid[];
  route text;
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

  -- [retrieval route, issue 12: begin] private.chunk_search_route picks 'exact', 'tenant_index'
  -- or 'shared_index'; an index walk over-fetches 4 x match_count (at least 40) and keeps the
  -- match_count nearest by exact distance; a walk that yields fewer than match_count rows (a
  -- very selective filter) falls back to the exact scan below.
  route := private.chunk_search_route(tenant, doc_ids, metadata_filter);
  if route <> 'exact' then
    select pg_catalog.array_agg(n.id order by n.distance, n.id),
           pg_catalog.array_agg(n.distance order by n.distance, n.id)
      into ids, distances
      from (select h.id, h.distance
              from private.nearest_chunks(route, tenant, query_embedding,
                                          greatest(match_count * 4, 40),
                                          doc_ids, metadata_filter) as h
             order by h.distance, h.id
             limit match_count) as n;
  end if;

  if route = 'exact' or coalesce(pg_catalog.cardinality(ids), 0) < match_count then
  -- [retrieval route: end]
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

  -- Chunks without a usable distance (NaN) and below min_similarity are dropped in the final
  -- statement; when usage is recorded, the same filter runs first so that exactly the returned
  -- chunks are recorded (a separate statement only then: each one costs an executor start).
  if usage_agent_id is not null and ids is not null then
    select pg_catalog.array_agg(r.id order by r.ord), pg_catalog.array_agg(r.distance order by r.ord)
      into ids, distances
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
     where r.distance <> 'NaN'::float8
       and (min_similarity is null or 1 - r.distance >= min_similarity);
    if ids is not null then
      perform private.record_chunk_usage(tenant, usage_agent_id, ids, usage_execution_id);
    end if;
  end if;

  return query
    select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
           c.chunk_index, 1 - r.distance
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
      join public.document_chunks as c on c.client_id = tenant and c.id = r.id
      join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
      join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
     where r.distance <> 'NaN'::float8
       and (min_similarity is null or 1 - r.distance >= min_similarity)
     order by r.ord;
end;
$$;

comment on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) is
  'Semantic search over one tenant''s chunks (the tenant is resolved by the caller: public.search_embeddings or backend.search_embeddings). Exact for small tenants and small filtered sets, otherwise an HNSW walk of the tenant''s own index (promoted tenants) or of the shared index (docs/retrieval.md).';

revoke all on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid) to authenticated, service_role;
-- <<< sql/functions/private.search_embeddings.sql

notify pgrst, 'reload schema';
