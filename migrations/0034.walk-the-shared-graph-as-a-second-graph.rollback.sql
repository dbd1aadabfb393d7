-- 0034 walk-the-shared-graph-as-a-second-graph (rollback): the merged route's shared walk at
-- ef_search 64 with the caller's candidate count, and always beside the tenant's own walk
-- (private.nearest_chunks of 0026).

set local lock_timeout = '10s';
set local statement_timeout = '5min';

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

notify pgrst, 'reload schema';
