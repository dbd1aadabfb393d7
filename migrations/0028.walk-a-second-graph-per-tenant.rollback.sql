-- 0028 walk-a-second-graph-per-tenant (rollback): a promoted tenant's searches walk its own graph
-- alone again; the second graphs and their walk functions are dropped (the previous functions
-- would leave them unused while every insert of the tenant still updated them).

set local lock_timeout = '10s';
set local statement_timeout = '30min';

do $$ begin perform extensions.vector_dims('[1]'::extensions.vector); end $$; -- loads vector

-- Each tenant's second walk, then its second graph (a plain drop: this runs in a transaction).
do $$
declare
  f regprocedure;
  i regclass;
begin
  for f in
    select p.oid::regprocedure
      from pg_catalog.pg_proc as p
     where p.pronamespace = 'private'::pg_catalog.regnamespace
       and p.proname like 'nearest\_chunks\_h\_%'
  loop
    execute pg_catalog.format('drop function %s', f);
  end loop;
  for i in
    select c.oid::regclass
      from pg_catalog.pg_class as c
     where c.relnamespace = 'public'::pg_catalog.regnamespace
       and c.relkind = 'i'
       and c.relname like 'document\_chunks\_hnswh\_%'
  loop
    execute pg_catalog.format('drop index %s', i);
  end loop;
end
$$;

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
  walk text := 'nearest_chunks_t_' || pg_catalog.replace(client_id::text, '-', '');
begin
  -- pgvector defines hnsw.* when its library loads; the SET clauses below need it loaded.
  perform extensions.vector_dims('[1]'::extensions.vector);
  execute pg_catalog.format($ddl$
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
         order by c.embedding operator(extensions.<=>) %1$I.query_embedding
         limit %1$I.candidate_count;
    end;
    $body$
  $ddl$, walk, client_id);
  execute pg_catalog.format(
    'comment on function private.%I(extensions.vector, integer, uuid[], jsonb) is %L',
    walk,
    pg_catalog.format('The walk of client %s''s own partial HNSW index (written by private.create_tenant_chunk_walk on promotion).', client_id));
  execute pg_catalog.format(
    'revoke all on function private.%I(extensions.vector, integer, uuid[], jsonb) from public',
    walk);
  execute pg_catalog.format(
    'grant execute on function private.%I(extensions.vector, integer, uuid[], jsonb) to authenticated, service_role',
    walk);
  return walk;
end;
$$;

comment on function private.create_tenant_chunk_walk(uuid) is
  'Writes private.nearest_chunks_t_<client hex>, the walk of one promoted client''s partial HNSW index with the client as a literal (its plan is kept per session). Called by the promotion procedure; returns the function''s name.';

revoke all on function private.create_tenant_chunk_walk(uuid) from public, anon, authenticated, service_role;
-- <<< sql/functions/private.create_tenant_chunk_walk.sql

-- >>> sql/functions/private.drop_tenant_chunk_walk.sql
/* why: the counterpart of private.create_tenant_chunk_walk, for demotion (renum-db tenant-index
   demote): drops the client's walk function once the registry says 'retiring', so no search
   calls it any more. Idempotent. security invoker, executable only by the operator role. */
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
end;
$$;

comment on function private.drop_tenant_chunk_walk(uuid) is
  'Drops private.nearest_chunks_t_<client hex>, the walk function of a demoted client. Called by the demotion procedure.';

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
begin
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
  'Up to candidate_count chunks of one promoted client nearest to query_embedding, by walking the client''s own partial HNSW index (iterative scan, relaxed order: re-sort the result by distance).';

revoke all on function private.nearest_chunks_tenant_index(uuid, extensions.vector, integer, uuid[], jsonb) from public;
grant execute on function private.nearest_chunks_tenant_index(uuid, extensions.vector, integer, uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.nearest_chunks_tenant_index.sql

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
   that stopped half-way). Not granted to API roles: the operator's login runs it.
   security invoker. */
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
         case
           when w.state in ('building', 'retiring') then 'resume'
           when w.state is null and w.n > s.exact_max
                and (w.n / t.n < s.min_share or w.n >= s.second_graph_min) then 'promote'
           when w.state = 'ready' and w.n <= s.exact_max / 2 then 'demote'
         end
    from rows as w
    cross join total as t
    cross join settings as s
    left join pg_catalog.pg_class as ic
      on ic.relname = w.index_name and ic.relnamespace = 'public'::pg_catalog.regnamespace
    left join pg_catalog.pg_index as i on i.indexrelid = ic.oid
   where w.state is not null or w.n > s.exact_max
   order by w.n desc, w.client_id
$$;

comment on function private.tenant_chunk_index_status() is
  'Per-tenant HNSW indexes for operators: each client with an index or more chunks than renum.search_exact_max_rows, its rows, share, current search route, index state/validity/size and advice (promote: a mid-size client with a small share, or a client of at least renum.search_second_graph_min_rows rows; demote; resume).';

revoke all on function private.tenant_chunk_index_status() from public;
-- <<< sql/functions/private.tenant_chunk_index_status.sql
