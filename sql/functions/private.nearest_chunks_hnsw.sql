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
