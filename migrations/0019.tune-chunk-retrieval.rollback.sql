-- transactional: false
--
-- 0019 rollback: the tenant walk functions and their writers dropped, the tenant-index walk,
-- the shared walk and the search route of 0018, the shared HNSW index rebuilt at
-- ef_construction 64 (concurrently, same name), embeddings stored with the default storage
-- (extended; rows written meanwhile keep their inline vectors until rewritten).

set lock_timeout = '10s';
set statement_timeout = 0;

begin;

-- pgvector defines hnsw.* when its library loads; a non-superuser may name them in a function's
-- SET clause only once it is loaded (see 0007).
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

-- >>> sql/functions/private.nearest_chunks_tenant_index.sql
/* why: the HNSW walk over a promoted tenant's own partial index
   (`where client_id = '<tenant>'::uuid`, registry private.tenant_chunk_indexes). The planner
   uses a partial index only when it can prove that the query's predicate implies the index's,
   which a parameter never allows: so the tenant id is written into the statement as a literal
   (format %L of a uuid value, never caller text) and the statement is planned per call
   (EXECUTE). The other values are passed as parameters. Same walk settings as the shared walk
   (private.nearest_chunks_hnsw): iterative scan in relaxed order (the caller over-fetches and
   re-sorts by the exact distances returned), ef_search 64, sorts disabled so the only plan is an
   index walk. language plpgsql: EXECUTE needs it.
   security invoker: RLS applies, on top of the explicit tenant predicate. */
create or replace function private.nearest_chunks_tenant_index(
  client_id uuid,
  query_embedding extensions.vector,
  candidate_count integer,
  document_ids uuid[] default null,
  metadata_filter jsonb default null
)
returns table (id uuid, distance double precision)
language plpgsql
stable
security invoker
set search_path = ''
set hnsw.iterative_scan = 'relaxed_order'
set hnsw.ef_search = '64'
set enable_sort = 'off'
set enable_incremental_sort = 'off'
as $$
begin
  return query execute pg_catalog.format(
    'select c.id, c.embedding operator(extensions.<=>) $1
       from public.document_chunks as c
      where c.client_id = %L::uuid
        and c.embedding is not null
        and ($3::uuid[] is null or c.document_id = any ($3::uuid[]))
        and ($4::jsonb is null or c.metadata @> $4::jsonb)
      order by c.embedding operator(extensions.<=>) $1
      limit $2',
    nearest_chunks_tenant_index.client_id)
    using query_embedding, candidate_count, document_ids, metadata_filter;
end;
$$;

comment on function private.nearest_chunks_tenant_index(uuid, extensions.vector, integer, uuid[], jsonb) is
  'Up to candidate_count chunks of one promoted client nearest to query_embedding, by walking the client''s own partial HNSW index (iterative scan, relaxed order: re-sort the result by distance).';

revoke all on function private.nearest_chunks_tenant_index(uuid, extensions.vector, integer, uuid[], jsonb) from public;
grant execute on function private.nearest_chunks_tenant_index(uuid, extensions.vector, integer, uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.nearest_chunks_tenant_index.sql

-- The walk functions of promoted tenants, then their writers.
do $$
declare
  client uuid;
begin
  for client in select t.client_id from private.tenant_chunk_indexes as t order by 1 loop
    perform private.drop_tenant_chunk_walk(client);
  end loop;
end
$$;
drop function if exists private.drop_tenant_chunk_walk(uuid);
drop function if exists private.create_tenant_chunk_walk(uuid);

-- >>> sql/functions/private.chunk_search_route.sql
/* why: one place decides how public.search_embeddings finds a tenant's nearest chunks:
   - 'exact': rank every candidate by exact distance. Right by construction; the cheapest plan
     for few rows (about 10 us per 1536-d row). Chosen when the tenant, or the filtered subset,
     holds at most renum.search_exact_max_rows rows (default 1000).
   - 'tenant_index': walk the tenant's own partial HNSW index (registry
     private.tenant_chunk_indexes, state 'ready'). Its graph holds only the tenant's rows, so
     recall does not depend on the tenant's share of the table.
   - 'shared_index': walk the shared HNSW index filtering to the tenant. Only when the tenant's
     share of the table is at least renum.search_shared_min_share (default 0.5): below that the
     filtered walk spends its budget in other tenants' parts of the graph (issue 12: recall 0.87
     with queries at 0.0 for a 6% tenant).
   - otherwise 'exact' again: a mid-size tenant with a small share that is not promoted is
     searched exactly (right, slower); `renum-db tenant status` lists it as due for promotion.
   Rows and share come from statistics (private.chunk_tenant_estimate); before the first
   ANALYZE a bounded count decides between 'exact' and 'shared_index' (the plan of 0007).
   A filter (documents in scope, metadata) is counted, bounded, because statistics cannot say
   how many rows it keeps: a small filtered set is ranked exactly.
   One statement: CASE evaluates only the branches it reaches, so the counts and the statistics
   lookup (about 0.15 ms and ten catalog locks) run only when needed; a promoted tenant's search
   reads neither. language plpgsql, for its plan kept per session (a SQL function re-plans its
   body on every call before PostgreSQL 18). security invoker: the counts run under the caller's RLS. */
create or replace function private.chunk_search_route(
  client_id uuid,
  document_ids uuid[] default null,
  metadata_filter jsonb default null
)
returns text
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  return (
  with settings as (
    select coalesce(nullif(pg_catalog.current_setting('renum.search_exact_max_rows', true), '')
                      ::integer, 1000) as exact_max,
           coalesce(nullif(pg_catalog.current_setting('renum.search_shared_min_share', true), '')
                      ::double precision, 0.5) as min_share
  )
  select case
    when (chunk_search_route.document_ids is not null
          or chunk_search_route.metadata_filter is not null)
         and (select pg_catalog.count(*)
                from (select
                        from public.document_chunks as c
                       where c.client_id = chunk_search_route.client_id
                         and (chunk_search_route.document_ids is null
                              or c.document_id = any (chunk_search_route.document_ids))
                         and (chunk_search_route.metadata_filter is null
                              or c.metadata @> chunk_search_route.metadata_filter)
                       limit s.exact_max + 1) as bounded) <= s.exact_max
      then 'exact'
    when exists (select
                   from private.tenant_chunk_indexes as t
                  where t.client_id = chunk_search_route.client_id
                    and t.state = 'ready')
      then 'tenant_index'
    else (
      select case
               when e.tenant_rows is null
                 then case
                        when (select pg_catalog.count(*)
                                from (select
                                        from public.document_chunks as c
                                       where c.client_id = chunk_search_route.client_id
                                       limit s.exact_max + 1) as bounded) > s.exact_max
                          then 'shared_index'
                        else 'exact'
                      end
               when e.tenant_rows <= s.exact_max then 'exact'
               when e.share >= s.min_share then 'shared_index'
               else 'exact'
             end
        from (select) as one
        left join private.chunk_tenant_estimate(chunk_search_route.client_id) as e on true)
  end
    from settings as s);
end;
$$;

comment on function private.chunk_search_route(uuid, uuid[], jsonb) is
  'How public.search_embeddings searches one client: exact, tenant_index (the client''s own HNSW index, when promoted) or shared_index (the shared HNSW index, when the client holds at least renum.search_shared_min_share of the rows). See docs/retrieval.md.';

revoke all on function private.chunk_search_route(uuid, uuid[], jsonb) from public;
grant execute on function private.chunk_search_route(uuid, uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.chunk_search_route.sql

commit;

create index concurrently if not exists document_chunks_embedding_hnsw_next
  on public.document_chunks
  using hnsw (embedding extensions.vector_cosine_ops)
  with (m = 16, ef_construction = 64);

drop index concurrently if exists public.document_chunks_embedding_hnsw_idx;

-- The index keeps the name every tool and document uses (nothing refers to an index by name
-- at run time; the planner picks it by definition):
alter index if exists public.document_chunks_embedding_hnsw_next
  -- squawk-ignore renaming-object
  rename to document_chunks_embedding_hnsw_idx;

begin;
alter table public.document_chunks alter column embedding set storage extended;
commit;

notify pgrst, 'reload schema';
