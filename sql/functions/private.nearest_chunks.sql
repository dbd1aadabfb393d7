/* why: one call site in private.search_embeddings for every index walk: the route (from
   private.chunk_search_route) names it: 'tenant_index' (the tenant's own graph), 'shared_index'
   (the shared graph, filtered to the tenant) or, since 0025, 'tenant_and_shared_index': both
   walks merged. A chunk both walks found is returned once (same vector, same exact distance);
   the caller sorts by distance and keeps the nearest, so a neighbour one graph cannot reach is
   still found through the other.
   - In the merged route the shared walk is the second walk: it only has to cover the pockets of
     the tenant's own graph, as a promoted tenant's second graph does (0030). Since 0034 it runs
     at ef_search 32 and takes at most 32 candidates (0026: 64 and the caller's count; 200 when
     the shared walk is the only one). Measured on the benchmark's majority tenant (154k rows of
     a 200k table and 354k of 400k; 230 queries, every variant interleaved, docs/retrieval.md,
     "The merged route's second walk"): recall unchanged, the call 8-10% cheaper.
   - A majority tenant that also has a second graph of its own (promoted while it held less than
     renum.search_shared_min_share, then grown past it) walks its two own graphs only (0034):
     they already cover each other's pockets (0028), and the shared walk was a third graph.
   security invoker: every walk runs under the caller's RLS. */
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
    if pg_catalog.to_regprocedure(
         'private.nearest_chunks_h_' || pg_catalog.replace(nearest_chunks.client_id::text, '-', '')
         || '(extensions.vector, integer, uuid[], jsonb)') is not null then
      return query
        select w.id, w.distance
          from private.nearest_chunks_tenant_index(nearest_chunks.client_id, query_embedding,
                                                   candidate_count, document_ids,
                                                   metadata_filter) as w;
      return;
    end if;
    return query
      select distinct on (u.id) u.id, u.distance
        from (select w.id, w.distance
                from private.nearest_chunks_tenant_index(nearest_chunks.client_id, query_embedding,
                                                         candidate_count, document_ids,
                                                         metadata_filter) as w
              union all
              select w.id, w.distance
                from private.nearest_chunks_hnsw(nearest_chunks.client_id, query_embedding,
                                                 least(candidate_count, 32), document_ids,
                                                 metadata_filter, ef_search => 32) as w) as u
       order by u.id, u.distance;
  else
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('no index walk for route %L', route);
  end if;
end;
$$;

comment on function private.nearest_chunks(text, uuid, extensions.vector, integer, uuid[], jsonb) is
  'Up to candidate_count chunks of one client nearest to query_embedding by the index walk the route names: tenant_index (the client''s partial HNSW index), shared_index (the shared one) or tenant_and_shared_index (the client''s own graph and, at ef_search 32, the shared one, merged: up to candidate_count + 32; a client with a second graph of its own walks its two graphs instead).';

revoke all on function private.nearest_chunks(text, uuid, extensions.vector, integer, uuid[], jsonb) from public;
grant execute on function private.nearest_chunks(text, uuid, extensions.vector, integer, uuid[], jsonb) to authenticated, service_role;
