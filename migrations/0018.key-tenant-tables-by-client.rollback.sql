-- transactional: false
--
-- 0018 rollback: per-tenant indexes and their registry dropped; every tenant table keyed by (id)
-- again, with unique (client_id, id) where 0004/0003 had it, and the foreign keys pointing at it.
-- Same method as the forward migration: concurrent builds, short swaps, deferred validation.

-- Every dropped constraint is re-created in the same transaction on an index built beforehand
-- (same columns, same guarantee), so no client ever runs without it:
-- squawk-ignore-file ban-drop-constraint
set lock_timeout = '10s';
set statement_timeout = 0;

-- Part 2 first: searches back to the plan of 0014 (search_embeddings, current_client_id), then the per-tenant indexes and their registry.
-- The per-tenant indexes are dropped here without `concurrently` (a rollback cannot loop over
-- them outside a function): each drop locks document_chunks briefly. On a live database demote
-- the tenants first (`renum-db tenant demote`), which drops them concurrently.
begin;

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

drop function if exists private.nearest_chunks(text, uuid, extensions.vector, integer, uuid[], jsonb);
drop function if exists private.nearest_chunks_tenant_index(uuid, extensions.vector, integer, uuid[], jsonb);
drop function if exists private.chunk_search_route(uuid, uuid[], jsonb);
drop function if exists private.tenant_chunk_index_status();
drop function if exists private.chunk_tenant_estimate(uuid);

do $$
declare
  name text;
begin
  for name in select t.index_name from private.tenant_chunk_indexes as t order by 1 loop
    execute pg_catalog.format('drop index if exists public.%I', name);
  end loop;
end;
$$;

drop table if exists private.tenant_chunk_indexes;

commit;

-- Step 1: build the new unique indexes beside the old ones, without blocking writers.
create unique index concurrently if not exists knowledge_bases_pkey_prev
  on public.knowledge_bases (id);
create unique index concurrently if not exists knowledge_bases_client_id_id_key_prev
  on public.knowledge_bases (client_id, id);
create unique index concurrently if not exists knowledge_collections_pkey_prev
  on public.knowledge_collections (id);
create unique index concurrently if not exists knowledge_collections_client_id_id_key_prev
  on public.knowledge_collections (client_id, id);
create unique index concurrently if not exists documents_pkey_prev
  on public.documents (id);
create unique index concurrently if not exists documents_client_id_id_key_prev
  on public.documents (client_id, id);
create unique index concurrently if not exists document_chunks_pkey_prev
  on public.document_chunks (id);
create unique index concurrently if not exists document_chunks_client_id_id_key_prev
  on public.document_chunks (client_id, id);
create unique index concurrently if not exists agents_pkey_prev
  on public.agents (id);
create unique index concurrently if not exists agents_client_id_id_key_prev
  on public.agents (client_id, id);
create unique index concurrently if not exists agent_executions_pkey_prev
  on public.agent_executions (id);
create unique index concurrently if not exists agent_executions_client_id_id_key_prev
  on public.agent_executions (client_id, id);
create unique index concurrently if not exists api_credentials_pkey_prev
  on public.api_credentials (id);
create unique index concurrently if not exists document_versions_pkey_prev
  on public.document_versions (id);
create unique index concurrently if not exists document_usage_stats_pkey_prev
  on public.document_usage_stats (id);
create unique index concurrently if not exists investigations_pkey_prev
  on public.investigations (id);
create unique index concurrently if not exists embedding_cache_pkey_prev
  on public.embedding_cache (id);

-- Step 2: per table, one short transaction swaps the constraints onto the new indexes
-- (catalog-only: no scan, no rebuild) and re-creates the foreign keys that pointed at the old
-- (client_id, id) index as `not valid` (checked for new rows at once; step 3 checks the old rows).
begin;
set local lock_timeout = '10s';
alter table public.knowledge_collections drop constraint knowledge_collections_knowledge_base_fk;
alter table public.knowledge_bases drop constraint knowledge_bases_id_key;
alter table public.knowledge_bases drop constraint knowledge_bases_pkey;
alter table public.knowledge_bases
  add constraint knowledge_bases_pkey primary key using index knowledge_bases_pkey_prev;
alter table public.knowledge_bases
  add constraint knowledge_bases_client_id_id_key unique using index knowledge_bases_client_id_id_key_prev;
alter table public.knowledge_collections
  add constraint knowledge_collections_knowledge_base_fk
  foreign key (client_id, knowledge_base_id) references public.knowledge_bases(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.documents drop constraint documents_collection_fk;
alter table public.knowledge_collections drop constraint knowledge_collections_id_key;
alter table public.knowledge_collections drop constraint knowledge_collections_pkey;
alter table public.knowledge_collections
  add constraint knowledge_collections_pkey primary key using index knowledge_collections_pkey_prev;
alter table public.knowledge_collections
  add constraint knowledge_collections_client_id_id_key unique using index knowledge_collections_client_id_id_key_prev;
alter table public.documents
  add constraint documents_collection_fk
  foreign key (client_id, collection_id) references public.knowledge_collections(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_chunks drop constraint document_chunks_document_fk;
alter table public.document_usage_stats drop constraint document_usage_stats_document_fk;
alter table public.documents drop constraint documents_id_key;
alter table public.documents drop constraint documents_pkey;
alter table public.documents
  add constraint documents_pkey primary key using index documents_pkey_prev;
alter table public.documents
  add constraint documents_client_id_id_key unique using index documents_client_id_id_key_prev;
alter table public.document_chunks
  add constraint document_chunks_document_fk
  foreign key (client_id, document_id) references public.documents(client_id, id) on delete cascade not valid;
alter table public.document_usage_stats
  add constraint document_usage_stats_document_fk
  foreign key (client_id, document_id) references public.documents(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_usage_stats drop constraint document_usage_stats_chunk_fk;
alter table public.document_chunks drop constraint document_chunks_id_key;
alter table public.document_chunks drop constraint document_chunks_pkey;
alter table public.document_chunks
  add constraint document_chunks_pkey primary key using index document_chunks_pkey_prev;
alter table public.document_chunks
  add constraint document_chunks_client_id_id_key unique using index document_chunks_client_id_id_key_prev;
alter table public.document_usage_stats
  add constraint document_usage_stats_chunk_fk
  foreign key (client_id, chunk_id) references public.document_chunks(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.agent_executions drop constraint agent_executions_agent_fk;
alter table public.document_usage_stats drop constraint document_usage_stats_agent_fk;
alter table public.agents drop constraint agents_id_key;
alter table public.agents drop constraint agents_pkey;
alter table public.agents
  add constraint agents_pkey primary key using index agents_pkey_prev;
alter table public.agents
  add constraint agents_client_id_id_key unique using index agents_client_id_id_key_prev;
alter table public.agent_executions
  add constraint agent_executions_agent_fk
  foreign key (client_id, agent_id) references public.agents(client_id, id) on delete cascade not valid;
alter table public.document_usage_stats
  add constraint document_usage_stats_agent_fk
  foreign key (client_id, agent_id) references public.agents(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_usage_stats drop constraint document_usage_stats_execution_fk;
alter table public.agent_executions drop constraint agent_executions_id_key;
alter table public.agent_executions drop constraint agent_executions_pkey;
alter table public.agent_executions
  add constraint agent_executions_pkey primary key using index agent_executions_pkey_prev;
alter table public.agent_executions
  add constraint agent_executions_client_id_id_key unique using index agent_executions_client_id_id_key_prev;
alter table public.document_usage_stats
  add constraint document_usage_stats_execution_fk
  foreign key (client_id, last_execution_id) references public.agent_executions(client_id, id) on delete set null (last_execution_id) not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.api_credentials drop constraint api_credentials_id_key;
alter table public.api_credentials drop constraint api_credentials_pkey;
alter table public.api_credentials
  add constraint api_credentials_pkey primary key using index api_credentials_pkey_prev;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_versions drop constraint document_versions_id_key;
alter table public.document_versions drop constraint document_versions_pkey;
alter table public.document_versions
  add constraint document_versions_pkey primary key using index document_versions_pkey_prev;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_usage_stats drop constraint document_usage_stats_id_key;
alter table public.document_usage_stats drop constraint document_usage_stats_pkey;
alter table public.document_usage_stats
  add constraint document_usage_stats_pkey primary key using index document_usage_stats_pkey_prev;
commit;

begin;
set local lock_timeout = '10s';
alter table public.investigations drop constraint investigations_id_key;
alter table public.investigations drop constraint investigations_pkey;
alter table public.investigations
  add constraint investigations_pkey primary key using index investigations_pkey_prev;
commit;

begin;
set local lock_timeout = '10s';
alter table public.embedding_cache drop constraint embedding_cache_id_key;
alter table public.embedding_cache drop constraint embedding_cache_pkey;
alter table public.embedding_cache
  add constraint embedding_cache_pkey primary key using index embedding_cache_pkey_prev;
commit;

-- Step 3: check the existing rows against the re-created foreign keys (share update exclusive:
-- reads and writes go on).
alter table public.knowledge_collections validate constraint knowledge_collections_knowledge_base_fk;
alter table public.documents validate constraint documents_collection_fk;
alter table public.document_chunks validate constraint document_chunks_document_fk;
alter table public.document_usage_stats validate constraint document_usage_stats_document_fk;
alter table public.document_usage_stats validate constraint document_usage_stats_chunk_fk;
alter table public.agent_executions validate constraint agent_executions_agent_fk;
alter table public.document_usage_stats validate constraint document_usage_stats_agent_fk;
alter table public.document_usage_stats validate constraint document_usage_stats_execution_fk;
notify pgrst, 'reload schema';
