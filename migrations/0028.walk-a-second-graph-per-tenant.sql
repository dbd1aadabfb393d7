-- depends: 0027.walk-chunk-texts-in-insert-order
--
-- 0028 walk-a-second-graph-per-tenant
-- what: a promoted tenant below renum.search_shared_min_share gets a second partial HNSW graph of
--       its rows (document_chunks_hnswh_<client hex>, halfvec of the normalised embedding),
--       built by `renum-db tenant-index promote`, and its searches walk both graphs and merge them:
--       1. private.create_tenant_chunk_walk also writes the second graph's walk
--          (private.nearest_chunks_h_<client hex>) when that index is valid;
--       2. private.drop_tenant_chunk_walk drops it too;
--       3. private.nearest_chunks_tenant_index walks both when the second walk exists;
--       4. private.tenant_chunk_index_status lists the second graph and advises 'promote' for a
--          ready tenant that should have one and does not (every tenant promoted before 0028).
-- why: issue 12, recall@10 >= 0.99 mean and no query below 0.8 for every tenant class. One graph
--       of the benchmark's 25k-row tenant (m 16, ef_construction 128, 430 queries per build) left
--       1-6 queries below 0.8 in 6 of 25 builds, some at 0.0 even at ef_search 200 with 120
--       candidates (a region the walk never reaches); 4 of those builds, each merged with each of
--       1-3 second builds: none below 0.8 (mean 0.9963-0.9967). The big tenant's merged route
--       (0025) already walks two graphs (its own and the shared one).
-- cost: no index is built here (a migration runs in a transaction, where `create index
--       concurrently` cannot): tenants promoted before 0028 keep one graph until
--       `renum-db tenant-index promote --auto` builds their second one (status advises it). A
--       second graph costs about half the first's storage (halfvec) and a second walk per search
--       (about the first one's time again); each insert of the tenant updates one more index.

set local lock_timeout = '10s';
set local statement_timeout = '30min';

do $$ begin perform extensions.vector_dims('[1]'::extensions.vector); end $$; -- loads vector

-- >>> sql/functions/private.create_tenant_chunk_walk.sql
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
  -- One template; the graphs differ in the walk's name and the expression it orders by (that
  -- of its index), both constants here. The second walk is dropped when its index is missing.
  for graph in
    select *
      from (values
              ('nearest_chunks_t_' || hex, true, 'own partial HNSW index',
               'c.embedding operator(extensions.<=>) %1$I.query_embedding'),
              ('nearest_chunks_h_' || hex, second_ready, 'second partial HNSW index, halfvec',
               '(extensions.l2_normalize(c.embedding)::extensions.halfvec(1536))
                  operator(extensions.<=>)
                  (extensions.l2_normalize(%1$I.query_embedding)::extensions.halfvec(1536))'))
           as g (walk, wanted, what, order_by)
  loop
    if not graph.wanted then
      execute pg_catalog.format(
        'drop function if exists private.%I(extensions.vector, integer, uuid[], jsonb)',
        graph.walk);
      continue;
    end if;
    execute pg_catalog.format(pg_catalog.replace($ddl$
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
      set hnsw.ef_search = '64'
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
           limit %1$I.candidate_count;
      end;
      $body$
    $ddl$, '<order_by>', graph.order_by), graph.walk, client_id);
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
-- <<< sql/functions/private.create_tenant_chunk_walk.sql

-- >>> sql/functions/private.drop_tenant_chunk_walk.sql
/* why: the counterpart of private.create_tenant_chunk_walk, for demotion (renum-db tenant-index
   demote): drops the client's walk functions (its own graph's and, since 0028, its second
   graph's) once the registry says 'retiring', so no search calls them any more. Idempotent.
   security invoker, executable only by the operator role. */
create or replace function private.drop_tenant_chunk_walk(client_id uuid)
returns void
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  execute pg_catalog.format(
    'drop function if exists private.%I(extensions.vector, integer, uuid[], jsonb)',
    'nearest_chunks_t_' || pg_catalog.replace(client_id::text, '-', ''));
  execute pg_catalog.format(
    'drop function if exists private.%I(extensions.vector, integer, uuid[], jsonb)',
    'nearest_chunks_h_' || pg_catalog.replace(client_id::text, '-', ''));
end;
$$;

comment on function private.drop_tenant_chunk_walk(uuid) is
  'Drops private.nearest_chunks_t_<client hex> and private.nearest_chunks_h_<client hex>, the walk functions of a demoted client. Called by the demotion procedure.';

revoke all on function private.drop_tenant_chunk_walk(uuid) from public, anon, authenticated, service_role;
-- <<< sql/functions/private.drop_tenant_chunk_walk.sql

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
-- <<< sql/functions/private.nearest_chunks_tenant_index.sql

-- Its result gains two columns, which create or replace cannot do. An operator's function in an
-- unexposed schema, recreated below in the same transaction: no client sees it missing.
-- squawk-ignore ban-drop-function
drop function private.tenant_chunk_index_status();

-- >>> sql/functions/private.tenant_chunk_index_status.sql
/* why: what an operator needs to decide promotions (`renum-db tenant status`): every client that
   has a per-tenant index or is big enough to want one, with its exact row count and share of
   document_chunks (counted here, not estimated: an operator command may read the client_id
   index once), the route searches take now, the index's state, validity and size, and what to
   do: 'promote' (no index, more rows than the exact-scan limit, and a share below
   renum.search_shared_min_share, or, since 0025, at least renum.search_second_graph_min_rows
   rows (default 100,000): a majority tenant that big gets a second graph of its own, walked
   together with the shared one, because one graph that size leaves 1-2% of queries without
   their true neighbours; see private.chunk_search_route), 'demote' (an index for a client down to half the
   exact-scan limit or less, where the exact scan is as fast), 'resume' (a promotion or demotion
   that stopped half-way). Since 0028 it also lists each client's second graph
   (document_chunks_hnswh_<client hex>, walked with the first: private.nearest_chunks_tenant_index)
   and advises 'promote' for a ready client above the exact-scan limit with a share below
   renum.search_shared_min_share that lacks a valid one (promoted before 0028): promoting again
   builds it, concurrently, and keeps the first. Not granted to API roles: the operator's login
   runs it. security invoker. */
create or replace function private.tenant_chunk_index_status()
returns table (
  client_id uuid,
  chunk_rows bigint,
  share double precision,
  route text,
  index_name text,
  state text,
  index_valid boolean,
  index_bytes bigint,
  second_index_name text,
  second_index_bytes bigint,
  advice text
)
language sql
stable
security invoker
set search_path = ''
as $$
  with settings as (
    select coalesce(nullif(pg_catalog.current_setting('renum.search_exact_max_rows', true), '')
                      ::integer, 1000) as exact_max,
           coalesce(nullif(pg_catalog.current_setting('renum.search_shared_min_share', true), '')
                      ::double precision, 0.5) as min_share,
           coalesce(nullif(pg_catalog.current_setting('renum.search_second_graph_min_rows', true),
                           '')::bigint, 100000) as second_graph_min
  ), counts as (
    select c.client_id, pg_catalog.count(*) as n
      from public.document_chunks as c
     group by c.client_id
  ), total as (
    select greatest(coalesce(sum(k.n), 0), 1)::double precision as n from counts as k
  ), rows as (
    select coalesce(k.client_id, r.client_id) as client_id,
           coalesce(k.n, 0) as n,
           r.index_name, r.state
      from counts as k
      full join private.tenant_chunk_indexes as r on r.client_id = k.client_id
  )
  select w.client_id, w.n, w.n / t.n,
         private.chunk_search_route(w.client_id),
         w.index_name, w.state, i.indisvalid,
         case when i.indexrelid is not null then pg_catalog.pg_relation_size(i.indexrelid) end,
         hc.relname::text,
         case when hc.oid is not null then pg_catalog.pg_relation_size(hc.oid) end,
         case
           when w.state in ('building', 'retiring') then 'resume'
           when w.state is null and w.n > s.exact_max
                and (w.n / t.n < s.min_share or w.n >= s.second_graph_min) then 'promote'
           when w.state = 'ready' and w.n <= s.exact_max / 2 then 'demote'
           when w.state = 'ready' and w.n > s.exact_max and w.n / t.n < s.min_share
                and not coalesce(h.indisvalid, false) then 'promote'
         end
    from rows as w
    cross join total as t
    cross join settings as s
    left join pg_catalog.pg_class as ic
      on ic.relname = w.index_name and ic.relnamespace = 'public'::pg_catalog.regnamespace
    left join pg_catalog.pg_index as i on i.indexrelid = ic.oid
    left join pg_catalog.pg_class as hc
      on hc.relname = 'document_chunks_hnswh_' || pg_catalog.replace(w.client_id::text, '-', '')
     and hc.relnamespace = 'public'::pg_catalog.regnamespace
    left join pg_catalog.pg_index as h on h.indexrelid = hc.oid
   where w.state is not null or w.n > s.exact_max
   order by w.n desc, w.client_id
$$;

comment on function private.tenant_chunk_index_status() is
  'Per-tenant HNSW indexes for operators: each client with an index or more chunks than renum.search_exact_max_rows, its rows, share, current search route, index state/validity/size, its second graph (name and size) and advice (promote: a mid-size client with a small share, or a client of at least renum.search_second_graph_min_rows rows, or a promoted client with a small share and no valid second graph; demote; resume).';

revoke all on function private.tenant_chunk_index_status() from public;
-- <<< sql/functions/private.tenant_chunk_index_status.sql
