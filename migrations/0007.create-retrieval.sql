-- depends: 0006.create-investigations
--
-- 0007 create-retrieval
-- what: the per-tenant embedding cache and the retrieval API: search_embeddings, hybrid_search,
-- record_chunk_usage and most_used_documents, with their private helpers.
-- why: search is what agents call on every turn. It must be right for every tenant size (see
-- sql/functions/public.search_embeddings.sql), never cross tenants, and speak the language of
-- each knowledge base (Renum's users write Portuguese; see document_chunks.fts in 0004). The GIN
-- index on fts is built concurrently by 0008.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

create table public.embedding_cache (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id()
    references public.clients (id) on delete cascade,
  model text not null,
  content_hash bytea not null,
  embedding extensions.vector not null,
  created_at timestamptz not null default now(),
  constraint embedding_cache_key unique (client_id, model, content_hash),
  constraint embedding_cache_model_chk check (length(model) between 1 and 200),
  constraint embedding_cache_content_hash_chk check (length(content_hash) = 32)
);
comment on table public.embedding_cache is
  'Embeddings already computed, per client, keyed by (model, sha256 of the exact text), so repeated chunks and queries never call the embedding API twice. Per client on purpose: a shared cache would tell one tenant whether another embedded a given text. Users of the client read and add; only the backend deletes.';

create trigger embedding_cache_forbid_client_id_change
  before update of client_id on public.embedding_cache
  for each row execute function private.tg__forbid_client_id_change();

revoke all on table public.embedding_cache from public, anon, authenticated, service_role;
grant select on table public.embedding_cache to authenticated;
grant insert (client_id, model, content_hash, embedding) on table public.embedding_cache to authenticated;
grant select, insert, update, delete on table public.embedding_cache to service_role;

-- >>> sql/policies/tenant_table.sql.j2 table=embedding_cache select=viewer insert=viewer update=none delete=none
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for embedding_cache: select=viewer, insert=viewer, update=none, delete=none. */
alter table public.embedding_cache enable row level security;
alter table public.embedding_cache force row level security;
create policy embedding_cache_select on public.embedding_cache
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));
create policy embedding_cache_insert on public.embedding_cache
  for insert to authenticated
  with check (client_id = (select private.current_client_id('viewer')));
-- <<< sql/policies/tenant_table.sql.j2 table=embedding_cache select=viewer insert=viewer update=none delete=none

-- >>> sql/functions/private.search_client_id.sql
/* why: every retrieval function must search exactly one tenant, chosen safely:
   - an API user (role anon/authenticated) searches their own active client, always; passing
     another client_id is refused (42501), and a user with no active client is refused too;
   - any other caller (service_role, the backend's own login) has no tenant of its own and must
     name one (22004 if it does not); the functions then filter on it explicitly, so even the
     backend never receives a row of another tenant.
   security invoker: it only reads the caller's own profile through private.current_client_id. */
create or replace function private.search_client_id(requested_client_id uuid)
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  own uuid;
begin
  if current_user in ('anon', 'authenticated') then
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
  end if;
  if requested_client_id is null then
    raise exception using
      errcode = '22004',
      message = pg_catalog.format('client_id is required when calling as %s', current_user),
      hint = 'The backend has no tenant of its own: pass the client to search.';
  end if;
  return requested_client_id;
end;
$$;

comment on function private.search_client_id(uuid) is
  'The one tenant a retrieval call may touch: the API user''s own active client (42501 otherwise), or the client the backend names (22004 if none).';

revoke all on function private.search_client_id(uuid) from public;
grant execute on function private.search_client_id(uuid) to authenticated, service_role;
-- <<< sql/functions/private.search_client_id.sql

-- >>> sql/functions/private.scoped_document_ids.sql
/* why: collection and knowledge-base filters are resolved once per call into the ids of the
   documents in scope (null = no filter), so the chunk scans test one `= any(...)` instead of
   joining per row; ids of another tenant simply match nothing (client_id is part of every
   predicate). security invoker: runs under the caller's RLS. */
create or replace function private.scoped_document_ids(
  client_id uuid,
  collection_ids uuid[],
  knowledge_base_ids uuid[]
)
returns uuid[]
language sql
stable
security invoker
set search_path = ''
as $$
  select case
    when scoped_document_ids.collection_ids is null
     and scoped_document_ids.knowledge_base_ids is null then null
    else coalesce(
      (select pg_catalog.array_agg(d.id)
         from public.documents as d
         join public.knowledge_collections as k
           on k.client_id = d.client_id and k.id = d.collection_id
        where d.client_id = scoped_document_ids.client_id
          and (scoped_document_ids.collection_ids is null
               or d.collection_id = any (scoped_document_ids.collection_ids))
          and (scoped_document_ids.knowledge_base_ids is null
               or k.knowledge_base_id = any (scoped_document_ids.knowledge_base_ids))),
      '{}'::uuid[])
  end
$$;

comment on function private.scoped_document_ids(uuid, uuid[], uuid[]) is
  'Ids of the client''s documents inside the given collections and/or knowledge bases; null when neither filter is given.';

revoke all on function private.scoped_document_ids(uuid, uuid[], uuid[]) from public;
grant execute on function private.scoped_document_ids(uuid, uuid[], uuid[]) to authenticated, service_role;
-- <<< sql/functions/private.scoped_document_ids.sql

-- >>> sql/functions/private.record_chunk_usage.sql
/* why: seed 000's document_usage_stats: which agent used which chunk, how often, first and
   last. One row per (client, chunk, agent), incremented atomically with insert ... on conflict
   do update, so concurrent writers never lose an increment. Rows are upserted in chunk-id order,
   so two transactions recording overlapping chunks take their row locks in the same order and
   cannot deadlock. Chunk ids that are unknown or of another tenant are skipped; the agent (and
   execution, if given) must belong to the client, else PT404.
   security definer: API users read usage rows but may not write them directly (no grant), so
   only this function writes them. Because it bypasses RLS it re-checks the tenant itself: for an
   API request (role anon/authenticated) the client must be the caller's own active client.
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
  request_role text := pg_catalog.current_setting('role', true);
  recorded integer;
begin
  if record_chunk_usage.client_id is null then
    raise exception using errcode = '22004', message = 'client_id is required';
  end if;
  if request_role in ('anon', 'authenticated')
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
    private.search_client_id(record_chunk_usage.client_id),
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

-- pgvector defines hnsw.* when its library loads. A non-superuser (hosted Supabase's postgres) may
-- name an extension's parameter in a function's SET clause only once that library is loaded in
-- the session (42501 otherwise), and every migration runs on a fresh connection: calling one of
-- pgvector's C functions loads it. (Fixed in place: without it 0007 never applied on Supabase.)
do $$ begin perform extensions.vector_dims('[1]'::extensions.vector); end $$; -- loads vector

-- >>> sql/functions/private.nearest_chunks_hnsw.sql
/* why: the HNSW half of public.search_embeddings, kept apart so its planner settings apply to
   this one query only.
   - The planner must walk the HNSW index here. With a tenant predicate on an indexed client_id
     (ours, and the RLS policy's), it otherwise prefers "all the tenant's rows, then sort by
     distance" for a big tenant, because its cost model underrates computing 40,000 distances:
     measured 216 ms instead of a few (bench/results.md). Every alternative plan needs a Sort,
     so enable_sort / enable_incremental_sort = off leave only the index walk. Nothing else runs
     under these settings.
   - pgvector's iterative scan (relaxed_order) keeps walking the graph until enough rows pass the
     tenant filter; relaxed order means the first rows are only roughly nearest-first, so the
     caller over-fetches (candidate_count > match_count) and re-sorts by the exact distances
     returned here, which is what lifts recall@10 from about 0.97 to 0.99+.
   security invoker: RLS applies, on top of the explicit tenant predicate. */
create or replace function private.nearest_chunks_hnsw(
  client_id uuid,
  query_embedding extensions.vector,
  candidate_count integer,
  document_ids uuid[] default null,
  metadata_filter jsonb default null
)
returns table (id uuid, distance double precision)
language sql
stable
security invoker
set search_path = ''
set hnsw.iterative_scan = 'relaxed_order'
set hnsw.ef_search = '64'
set enable_sort = 'off'
set enable_incremental_sort = 'off'
as $$
  select c.id, c.embedding operator(extensions.<=>) nearest_chunks_hnsw.query_embedding
    from public.document_chunks as c
   where c.client_id = nearest_chunks_hnsw.client_id
     and c.embedding is not null
     and (nearest_chunks_hnsw.document_ids is null
          or c.document_id = any (nearest_chunks_hnsw.document_ids))
     and (nearest_chunks_hnsw.metadata_filter is null
          or c.metadata @> nearest_chunks_hnsw.metadata_filter)
   order by c.embedding operator(extensions.<=>) nearest_chunks_hnsw.query_embedding
   limit nearest_chunks_hnsw.candidate_count
$$;

comment on function private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb) is
  'Up to candidate_count chunks of one client nearest to query_embedding, by walking the HNSW index (iterative scan, relaxed order: re-sort the result by distance). Used by public.search_embeddings above its exact-scan limit.';

revoke all on function private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb) from public;
grant execute on function private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.nearest_chunks_hnsw.sql

-- >>> sql/functions/public.search_embeddings.sql
/* why: semantic search over one tenant's chunks, right for every tenant size.
   The common recipe (order by embedding <=> query limit k over an HNSW index, RLS filtering the
   rows) fails small tenants: pgvector filters after the index scan, so a tenant holding 0.2% of
   the rows gets almost nothing back. This function decides the plan per call:
   - it resolves the one tenant to search (private.search_client_id) and puts an explicit
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
   Validation fails fast with 22004 (null) or 22023 (wrong dimension, zero vector, match_count
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
  if extensions.vector_norm(query_embedding) = 0 then
    raise exception using errcode = '22023', message = 'query_embedding must not be the zero vector';
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

  tenant := private.search_client_id(search_embeddings.client_id);
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
         where min_similarity is null or 1 - n.distance >= min_similarity
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

  if min_similarity is not null and ids is not null then
    select pg_catalog.array_agg(r.id order by r.ord), pg_catalog.array_agg(r.distance order by r.ord)
      into ids, distances
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
     where 1 - r.distance >= min_similarity;
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
  tenant := private.search_client_id(hybrid_search.client_id);
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
           coalesce(r.similarity, 1 - extensions.cosine_distance(c.embedding, query_embedding)),
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
  tenant := private.search_client_id(most_used_documents.client_id);
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

notify pgrst, 'reload schema';
