/* why: the HNSW walk over a promoted tenant's own partial index
   (`where client_id = '<tenant>'::uuid`, registry private.tenant_chunk_indexes). The planner
   uses a partial index only when it can prove that the query's predicate implies the index's,
   which a parameter never allows: so the tenant id is written into the statement as a literal
   (format %L of a uuid value, never caller text) and the statement is planned per call
   (EXECUTE). The other values are passed as parameters. Same walk settings as the shared walk
   (private.nearest_chunks_hnsw): iterative scan in relaxed order (the caller over-fetches and
   re-sorts by the exact distances returned), ef_search 64, sorts disabled so the only plan is an
   index walk. language plpgsql: EXECUTE needs it.
   Since 0019 the promotion writes a walk function per tenant (private.create_tenant_chunk_walk:
   private.nearest_chunks_t_<client hex>, the same statement with the tenant literal, its plan
   kept per session); this function calls it when it exists, so a search no longer plans the
   walk, which locked every index of document_chunks on every call. A tenant promoted before
   0019 without one is walked by the statement planned per call, as before.
   Since 0028 a tenant with a second graph (its walk private.nearest_chunks_h_<client hex>,
   written with the first when the promotion built document_chunks_hnswh_<client hex>) is walked
   in both, each taking candidate_count, and each chunk returned once (the same exact distance
   from both walks): one graph can leave a region its walk never reaches, two builds rarely the
   same one (private.create_tenant_chunk_walk). The graph check of a promotion walks through
   here too, so it measures what searches find.
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
declare
  walk text := 'nearest_chunks_t_' || pg_catalog.replace(client_id::text, '-', '');
  second_walk text := 'nearest_chunks_h_' || pg_catalog.replace(client_id::text, '-', '');
begin
  if pg_catalog.to_regprocedure(
       'private.' || second_walk || '(extensions.vector, integer, uuid[], jsonb)') is not null then
    -- Both graphs; the second walk exists only beside the first (create_tenant_chunk_walk).
    return query execute pg_catalog.format(
      'select u.id, pg_catalog.min(u.distance)
         from (select w.id, w.distance from private.%I($1, $2, $3, $4) as w
               union all
               select w.id, w.distance from private.%I($1, $2, $3, $4) as w) as u
        group by u.id', walk, second_walk)
      using query_embedding, candidate_count, document_ids, metadata_filter;
    return;
  end if;
  if pg_catalog.to_regprocedure(
       'private.' || walk || '(extensions.vector, integer, uuid[], jsonb)') is not null then
    -- Planning this call locks no relation; the walk's kept plan locks the table and one index.
    return query execute pg_catalog.format(
      'select w.id, w.distance from private.%I($1, $2, $3, $4) as w', walk)
      using query_embedding, candidate_count, document_ids, metadata_filter;
    return;
  end if;
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
  'Up to candidate_count chunks of one promoted client nearest to query_embedding, by walking the client''s own partial HNSW index (iterative scan, relaxed order: re-sort the result by distance); with its second graph (0028), both walks merged: up to twice candidate_count, each chunk once.';

revoke all on function private.nearest_chunks_tenant_index(uuid, extensions.vector, integer, uuid[], jsonb) from public;
grant execute on function private.nearest_chunks_tenant_index(uuid, extensions.vector, integer, uuid[], jsonb) to authenticated, service_role;
