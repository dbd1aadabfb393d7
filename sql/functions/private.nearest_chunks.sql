/* why: one call site in public.search_embeddings for both index walks: the route
   ('tenant_index' or 'shared_index', from private.chunk_search_route) names the walk.
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
  else
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('no index walk for route %L', route);
  end if;
end;
$$;

comment on function private.nearest_chunks(text, uuid, extensions.vector, integer, uuid[], jsonb) is
  'Up to candidate_count chunks of one client nearest to query_embedding by the index walk the route names: tenant_index (the client''s partial HNSW index) or shared_index (the shared one).';

revoke all on function private.nearest_chunks(text, uuid, extensions.vector, integer, uuid[], jsonb) from public;
grant execute on function private.nearest_chunks(text, uuid, extensions.vector, integer, uuid[], jsonb) to authenticated, service_role;
