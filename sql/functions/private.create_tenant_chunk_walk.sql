/* why: a promoted tenant's search walks its own partial HNSW index
   (`where client_id = '<tenant>'::uuid`). The planner uses a partial index only when the query
   names that tenant as a literal, so the walk cannot be one shared statement with a parameter:
   0018 planned it on every call (EXECUTE), and planning locks every index of document_chunks
   (seven plus one per promoted tenant: 20+ relation locks per search, beyond the 16 a backend
   keeps on the lock manager's fast path, measured in bench/results.md). This function writes,
   for one promoted tenant, a PL/pgSQL walk function whose only difference from the template
   below is the tenant literal: private.nearest_chunks_t_<client hex>. Its statement is planned
   once per session and the plan kept, and running a kept plan locks only document_chunks and
   the index it walks. The promotion procedure (renum-db tenant-index promote) calls it before it
   marks the index 'ready'; private.drop_tenant_chunk_walk removes it on demotion.
   The walk: iterative scan in relaxed order (the caller over-fetches and re-sorts by the exact
   distances returned), ef_search 64, sorts disabled so the only plan is the index walk; security
   invoker, so RLS applies on top of the tenant literal.
   The second graph (0028): when the tenant also has a valid second partial index,
   document_chunks_hnswh_<client hex> (an HNSW graph of the same rows as halfvec,
   `(extensions.l2_normalize(embedding)::extensions.halfvec(1536))`, built by the promotion for a
   tenant below renum.search_shared_min_share), this function also writes its walk,
   private.nearest_chunks_h_<client hex>: the same statement ordered by the halfvec expression,
   returning the exact distance like the first; private.nearest_chunks_tenant_index walks both
   and merges them. Measured on the benchmark's 25k-row tenant (430 queries per build): 6 of 25
   builds of one graph left 1-6 queries below recall 0.8 (0.0 for some, at any ef_search); each
   of 4 such builds merged with each of 1-3 second builds left none (docs/retrieval.md, "Two
   graphs for every promoted tenant"). Without that index a stale second walk is dropped.
   The second walk is cheaper (0030): ef_search 32 and at most 32 candidates (the first keeps 64
   and the caller's count). It only has to cover the first graph's pockets: on 5 pocket builds
   of that tenant's first graph, a second walk at ef_search 16-64 left no query below 0.8 (mean
   0.9958-0.9967), at 32 for about 60% of the cost of 64; the first walk at 40 did not hold the
   mean (0.987). Asking it for more rows than ef_search would make the iterative scan go on
   walking, so the cap is the ef_search.
   The normalised halfvec: cosine order is the same, and unit components cannot overflow
   halfvec's range (a bare cast fails an insert of a component above 65504).
   security invoker and executable only by the migrating/operator role: it creates a function in
   the schema `private`, which only that role may do. The tenant id is a uuid value written with
   format %L, never caller text. */
create or replace function private.create_tenant_chunk_walk(client_id uuid)
returns text
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  hex text := pg_catalog.replace(client_id::text, '-', '');
  second_ready boolean;
  graph record;
begin
  -- pgvector defines hnsw.* when its library loads; the SET clauses below need it loaded.
  perform extensions.vector_dims('[1]'::extensions.vector);
  second_ready := exists (select
                            from pg_catalog.pg_index as i
                            join pg_catalog.pg_class as ic on ic.oid = i.indexrelid
                           where ic.relname = 'document_chunks_hnswh_' || hex
                             and ic.relnamespace = 'public'::pg_catalog.regnamespace
                             and i.indisvalid and i.indisready);
  -- One template; the graphs differ in the walk's name, the expression it orders by (that of
  -- its index), its ef_search and its row cap (0030), all constants here. The second walk is
  -- dropped when its index is missing.
  for graph in
    select *
      from (values
              ('nearest_chunks_t_' || hex, true, 'own partial HNSW index',
               'c.embedding operator(extensions.<=>) %1$I.query_embedding',
               '64', '%1$I.candidate_count'),
              ('nearest_chunks_h_' || hex, second_ready,
               'second partial HNSW index, halfvec; ef_search 32, at most 32 candidates',
               '(extensions.l2_normalize(c.embedding)::extensions.halfvec(1536))
                  operator(extensions.<=>)
                  (extensions.l2_normalize(%1$I.query_embedding)::extensions.halfvec(1536))',
               '32', 'least(%1$I.candidate_count, 32)'))
           as g (walk, wanted, what, order_by, ef_search, max_rows)
  loop
    if not graph.wanted then
      execute pg_catalog.format(
        'drop function if exists private.%I(extensions.vector, integer, uuid[], jsonb)',
        graph.walk);
      continue;
    end if;
    execute pg_catalog.format(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace($ddl$
      create or replace function private.%1$I(
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
      set hnsw.ef_search = '<ef_search>'
      set enable_sort = 'off'
      set enable_incremental_sort = 'off'
      as $body$
      begin
        return query
          select c.id, c.embedding operator(extensions.<=>) %1$I.query_embedding
            from public.document_chunks as c
           where c.client_id = %2$L::uuid
             and c.embedding is not null
             and (%1$I.document_ids is null or c.document_id = any (%1$I.document_ids))
             and (%1$I.metadata_filter is null or c.metadata @> %1$I.metadata_filter)
           order by <order_by>
           limit <max_rows>;
      end;
      $body$
    $ddl$, '<order_by>', graph.order_by), '<ef_search>', graph.ef_search),
      '<max_rows>', graph.max_rows), graph.walk, client_id);
    execute pg_catalog.format(
      'comment on function private.%I(extensions.vector, integer, uuid[], jsonb) is %L',
      graph.walk,
      pg_catalog.format('The walk of client %s''s %s (written by private.create_tenant_chunk_walk on promotion).', client_id, graph.what));
    execute pg_catalog.format(
      'revoke all on function private.%I(extensions.vector, integer, uuid[], jsonb) from public',
      graph.walk);
    execute pg_catalog.format(
      'grant execute on function private.%I(extensions.vector, integer, uuid[], jsonb) to authenticated, service_role',
      graph.walk);
  end loop;
  return 'nearest_chunks_t_' || hex;
end;
$$;

comment on function private.create_tenant_chunk_walk(uuid) is
  'Writes private.nearest_chunks_t_<client hex>, the walk of one promoted client''s partial HNSW index with the client as a literal (its plan is kept per session), and private.nearest_chunks_h_<client hex>, the walk of its second (halfvec) graph when that index is valid (dropped otherwise). Called by the promotion procedure; returns the first function''s name.';

revoke all on function private.create_tenant_chunk_walk(uuid) from public, anon, authenticated, service_role;
