-- depends: 0025.merge-tenant-and-shared-walks
--
-- 0026 narrow-merged-shared-walk
-- what: private.nearest_chunks_hnsw takes ef_search (default 200, as before); private.nearest_chunks
--       passes 64 for the shared walk of the merged route ('tenant_and_shared_index').
-- why: issue 12, p50 <= 3x the unfiltered HNSW walk: at 400,000 rows the big tenant's merged
--       search took 3.4x (stop 18's run; the floor got faster once the graphs fit in
--       shared_buffers). Its own walk costs 3.0 ms, the shared one 5.2 ms at ef_search 200;
--       merged at 64 the recall over 230 queries is the same (0.9987 at 64, 0.9991 at 200,
--       none below 0.8) for about half the shared walk. Only functions change: safe on a live
--       database. NOT YET MEASURED BY A FULL `make bench` (branch next/0026-merged-shared-ef).

set local lock_timeout = '10s';
set local statement_timeout = '5min';

do $$ begin perform extensions.vector_dims('[1]'::extensions.vector); end $$; -- loads vector

-- The signature gains a parameter: the old one goes first (PL/pgSQL callers resolve by name at
-- run time, so nothing depends on it in the catalog); a private function, no client calls it.
-- squawk-ignore ban-drop-function
drop function private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb);

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
   - ef_search 200 (0019; 64 before): the shared graph serves the tenant holding most of the
     table, and at 400,000 rows some of its queries found 0 of their true top 10 at ef_search
     40-64 (unfiltered too: a beam too narrow to leave a wrong region of the graph); the
     per-tenant graphs, twenty times smaller, keep 64.
   - language plpgsql (0019, issue 12): its statement is planned once per session and the plan
     kept (a generic plan: the tenant is a parameter, and the settings above leave the index walk
     as the only plan). A SQL function with SET clauses is never inlined and, before PostgreSQL
     18, re-plans its body on every call; planning locks every index of document_chunks (seven,
     plus one per promoted tenant), running a kept plan locks only the index it walks.
   - ef_search is a parameter (0026, default 200): the merged route of a promoted majority
     tenant ('tenant_and_shared_index') walks this graph beside the tenant's own and passes 64.
     Measured on the 354k-row tenant (230 queries, the merge done by hand): merged recall
     0.9987 / 0.9987 / 0.9991 / 0.9991 at 40 / 64 / 100 / 200, none below 0.8 at any, and the
     shared walk at 64 took 3.5 ms against 6.2 ms at 200. Set with set_config inside the body;
     the SET clause below restores the caller's value when the function returns.
   - plan_cache_mode = force_generic_plan (0025): a custom plan (PL/pgSQL's first five calls, when
     no caller forces generic plans) sees the tenant's id as a value, and for a promoted tenant
     the planner then walks its partial index instead of the shared one: the merged route
     ('tenant_and_shared_index') would walk the same graph twice. Measured on the 400k bench
     table by calling the walks directly: both "walks" failed on the same five queries.
   security invoker: RLS applies, on top of the explicit tenant predicate. */
create or replace function private.nearest_chunks_hnsw(
  client_id uuid,
  query_embedding extensions.vector,
  candidate_count integer,
  document_ids uuid[] default null,
  metadata_filter jsonb default null,
  ef_search integer default 200
)
returns table (id uuid, distance double precision)
language plpgsql
stable
security invoker
set search_path = ''
set hnsw.iterative_scan = 'relaxed_order'
set hnsw.ef_search = '200'
set enable_sort = 'off'
set enable_incremental_sort = 'off'
set plan_cache_mode = 'force_generic_plan'
as $$
begin
  if nearest_chunks_hnsw.ef_search is distinct from 200 then
    perform pg_catalog.set_config('hnsw.ef_search', nearest_chunks_hnsw.ef_search::text, true);
  end if;
  return query
  select c.id, c.embedding operator(extensions.<=>) nearest_chunks_hnsw.query_embedding
    from public.document_chunks as c
   where c.client_id = nearest_chunks_hnsw.client_id
     and c.embedding is not null
     and (nearest_chunks_hnsw.document_ids is null
          or c.document_id = any (nearest_chunks_hnsw.document_ids))
     and (nearest_chunks_hnsw.metadata_filter is null
          or c.metadata @> nearest_chunks_hnsw.metadata_filter)
   order by c.embedding operator(extensions.<=>) nearest_chunks_hnsw.query_embedding
   limit nearest_chunks_hnsw.candidate_count;
end;
$$;

comment on function private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb, integer) is
  'Up to candidate_count chunks of one client nearest to query_embedding, by walking the HNSW index (iterative scan, relaxed order: re-sort the result by distance) with the given ef_search (default 200). Used by public.search_embeddings above its exact-scan limit.';

revoke all on function private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb, integer) from public;
grant execute on function private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb, integer) to authenticated, service_role;
-- <<< sql/functions/private.nearest_chunks_hnsw.sql

-- >>> sql/functions/private.nearest_chunks.sql
/* why: one call site in private.search_embeddings for every index walk: the route (from
   private.chunk_search_route) names it: 'tenant_index' (the tenant's own graph), 'shared_index'
   (the shared graph, filtered to the tenant) or, since 0025, 'tenant_and_shared_index': both
   walks, each taking candidate_count, merged. A chunk both walks found is returned once (same
   vector, same exact distance); the caller sorts by distance and keeps the nearest, so a
   neighbour one graph cannot reach is still found through the other. In the merged route the
   shared walk runs at ef_search 64 (0026; 200 when it is the only walk): beside the tenant's
   own graph it found the same neighbours (none below 0.8 over 230 queries at 40-200) in about
   half the time.
   security invoker: both walks run under the caller's RLS. */
create or replace function private.nearest_chunks(
  route text,
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
as $$
begin
  if route = 'tenant_index' then
    return query
      select w.id, w.distance
        from private.nearest_chunks_tenant_index(nearest_chunks.client_id, query_embedding,
                                                 candidate_count, document_ids,
                                                 metadata_filter) as w;
  elsif route = 'shared_index' then
    return query
      select w.id, w.distance
        from private.nearest_chunks_hnsw(nearest_chunks.client_id, query_embedding,
                                         candidate_count, document_ids, metadata_filter) as w;
  elsif route = 'tenant_and_shared_index' then
    return query
      select distinct on (u.id) u.id, u.distance
        from (select w.id, w.distance
                from private.nearest_chunks_tenant_index(nearest_chunks.client_id, query_embedding,
                                                         candidate_count, document_ids,
                                                         metadata_filter) as w
              union all
              select w.id, w.distance
                from private.nearest_chunks_hnsw(nearest_chunks.client_id, query_embedding,
                                                 candidate_count, document_ids,
                                                 metadata_filter, ef_search => 64) as w) as u
       order by u.id, u.distance;
  else
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('no index walk for route %L', route);
  end if;
end;
$$;

comment on function private.nearest_chunks(text, uuid, extensions.vector, integer, uuid[], jsonb) is
  'Up to candidate_count chunks of one client nearest to query_embedding by the index walk the route names: tenant_index (the client''s partial HNSW index), shared_index (the shared one) or tenant_and_shared_index (both, merged: up to twice candidate_count).';

revoke all on function private.nearest_chunks(text, uuid, extensions.vector, integer, uuid[], jsonb) from public;
grant execute on function private.nearest_chunks(text, uuid, extensions.vector, integer, uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.nearest_chunks.sql
