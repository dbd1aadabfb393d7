-- depends: 0024.tune-fts-index
--
-- 0025 merge-tenant-and-shared-walks
-- what: a second graph for the biggest tenants:
--       - private.chunk_search_route: a promoted tenant holding at least
--         renum.search_shared_min_share of document_chunks is routed 'tenant_and_shared_index'
--         (a promoted tenant is now counted and its share cached, once a minute per session,
--         like every other tenant above the exact limit);
--       - private.nearest_chunks_hnsw always runs its generic plan, so the shared walk walks the
--         shared graph even for a promoted tenant (a custom plan took the tenant's partial one);
--       - private.nearest_chunks: that route walks the tenant's own partial HNSW index and the
--         shared one, each for candidate_count, and returns both (a chunk found twice, once);
--       - private.tenant_chunk_index_status: advises promoting a tenant of at least
--         renum.search_second_graph_min_rows rows (default 100,000) whatever its share.
-- why: issue 12: recall@10 mean >= 0.99 and no query below 0.8 for every tenant class. The big
--       tenant (154k-354k rows, 77-88% of the table) walked the shared graph alone: 0.969-0.976
--       over 230 queries, with queries at 0.0 that no ef_search up to 1000 recovers (regions the
--       walk cannot reach from the entry point). Its own partial graph alone: 0.989, also with
--       queries below 0.8, different ones. Both walks merged: 0.9995, none below 0.8 (200
--       queries, docs/retrieval.md). Only functions change: safe on a live database; a tenant
--       gets the second graph only when an operator promotes it (renum-db tenant-index promote).

set local lock_timeout = '10s';
set local statement_timeout = '5min';

-- pgvector's parameters (hnsw.*) appear in SET clauses of the walks: load the library first.
do $$ begin perform extensions.vector_dims('[1]'::extensions.vector); end $$; -- loads vector

-- >>> sql/functions/private.chunk_search_route.sql
/* why: one place decides how a search finds a tenant's nearest chunks (private.search_embeddings):
   - 'exact': rank every candidate by exact distance. Right by construction, and the cheapest plan
     for few rows (since 0019 the vectors are stored inline: about 2 us per 1536-d row instead of
     10 us through TOAST). Chosen when the tenant, or the filtered subset, holds at most
     renum.search_exact_max_rows rows (default 1000).
   - 'tenant_index': walk the tenant's own partial HNSW index (registry
     private.tenant_chunk_indexes, state 'ready'). Its graph holds only the tenant's rows, so
     recall does not depend on the tenant's share of the table.
   - 'tenant_and_shared_index' (0025): a promoted tenant that also holds at least
     renum.search_shared_min_share of the table walks both its own graph and the shared one and
     keeps the nearest of both. One graph of 150k-350k rows has regions its walk cannot reach
     from the entry point: 1-2% of queries find none of their true ten nearest, whatever
     ef_search (measured on 200 queries: shared graph alone 0.977, own graph alone 0.989, each
     with 2-4 queries below 0.8, different ones; both merged 0.9995, none below 0.8; see
     docs/retrieval.md, "Two graphs for the biggest tenant"). Two builds rarely leave the same
     region unreachable. Such a tenant is promoted only once it holds
     renum.search_second_graph_min_rows (private.tenant_chunk_index_status).
   - 'shared_index': walk the shared HNSW index filtering to the tenant. Only when the tenant's
     share of the table is at least renum.search_shared_min_share (default 0.5): below that the
     filtered walk spends its budget in other tenants' parts of the graph (issue 12: recall 0.87
     with queries at 0.0 for a 6% tenant).
   - otherwise 'exact' again: a tenant above the exact limit with a small share that is not
     promoted is searched exactly (right, slower); `renum-db tenant-index status` lists it as due
     for promotion.
   The checks run cheapest first, each a separate statement so that a call locks only the
   relations of the checks it reaches (0019, issue 12: the single CASE statement of 0018 locked
   the registry, the table and the fifteen catalog relations behind pg_stats on every call):
   the session cache below, first (0022: a tenant it knows to hold at most exact_max rows is
   ranked exactly with no statement at all, promoted or not: an exact scan of so few rows is
   right and the cheapest plan; this saved a registry probe and two relation locks per call of a
   small tenant); the registry (one primary-key probe, never cached: a promotion or demotion
   applies to the next call of a tenant above the limit); the tenant's rows (since 0025 for a
   promoted tenant too: its route depends on its share), counted up to exact_max + 1 (an index scan of the (client_id, id)
   key): a small tenant is ranked exactly, filtered or not; for a larger tenant, a document scope
   without a metadata filter is counted, bounded, through the document key (statistics cannot say
   how many rows a scope keeps; a small scope is ranked exactly), while a metadata filter goes to
   the walk, which falls back to the exact scan if it yields too few rows (counting it read a
   heap page per row); a tenant above the limit needs its share of the
   table, from the planner statistics (private.chunk_tenant_estimate). The count
   and the share are kept for 60 seconds in a session setting (renum.chunk_route_<client id>):
   they cost 0.2 ms (100 rows) to 1 ms (1,000 rows) per call, and a tenant crossing the limit
   is served by the previous plan for at most a minute, which is still right (an exact scan) or
   a walk. The cached values can only change which plan serves a tenant; RLS and the explicit
   tenant predicate still decide which rows are seen. Before the first ANALYZE there is no share: such a tenant is
   walked through the shared index (the plan of 0007).
   language plpgsql: its statements keep their plans per session. volatile: it writes the cache.
   security invoker: the counts run under the caller's RLS, so a user asking about another
   tenant counts nothing and gets 'exact'. */
create or replace function private.chunk_search_route(
  client_id uuid,
  document_ids uuid[] default null,
  metadata_filter jsonb default null
)
returns text
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  exact_max integer := coalesce(
    nullif(pg_catalog.current_setting('renum.search_exact_max_rows', true), '')::integer, 1000);
  min_share double precision := coalesce(
    nullif(pg_catalog.current_setting('renum.search_shared_min_share', true), '')
      ::double precision, 0.5);
  cache_key text;
  cached text;
  tenant_rows bigint;
  share_text text;
  share double precision;
  promoted boolean;
begin
  cache_key := 'renum.chunk_route_' || pg_catalog.replace(client_id::text, '-', '');
  cached := pg_catalog.current_setting(cache_key, true);
  if cached like '%@%@%@%'
     and pg_catalog.split_part(cached, '@', 2) = (exact_max + 1)::text
     and pg_catalog.split_part(cached, '@', 4)::double precision
         > extract(epoch from pg_catalog.clock_timestamp()) then
    tenant_rows := pg_catalog.split_part(cached, '@', 1)::bigint;
    if tenant_rows <= exact_max then
      return 'exact';
    end if;
    share_text := pg_catalog.split_part(cached, '@', 3);
  else
    cached := null;
  end if;
  promoted := exists (select
                        from private.tenant_chunk_indexes as t
                       where t.client_id = chunk_search_route.client_id
                         and t.state = 'ready');
  -- Since 0025 a promoted tenant's route depends on its share too (both graphs for a majority
  -- tenant), so it is counted and cached like any other: once a minute per session.
  if cached is null then
    select pg_catalog.count(*) into tenant_rows
      from (select
              from public.document_chunks as c
             where c.client_id = chunk_search_route.client_id
             limit exact_max + 1) as bounded;
    share_text := 'n';
  end if;
  if tenant_rows > exact_max and share_text = 'n' then
    select e.share into share from private.chunk_tenant_estimate(client_id) as e;
    share_text := coalesce(share::text, '');
    cached := null;
  end if;
  if cached is null then
    perform pg_catalog.set_config(
      cache_key,
      pg_catalog.concat_ws('@', tenant_rows, exact_max + 1, share_text,
                           extract(epoch from pg_catalog.clock_timestamp()) + 60),
      false);
  end if;
  if tenant_rows <= exact_max then
    return 'exact';
  end if;
  share := nullif(share_text, '')::double precision;
  if promoted and document_ids is null and metadata_filter is null then
    if share >= min_share then
      return 'tenant_and_shared_index';
    end if;
    return 'tenant_index';
  end if;
  -- A document scope without a metadata filter is counted, bounded, through the
  -- (client_id, document_id, chunk_index) key alone: a small scope is ranked exactly. A
  -- metadata filter is not counted: that would read a heap page per row of the tenant until
  -- exact_max + 1 matches (measured 24-122 ms for a filter keeping 10% of 4k-154k rows); the walk
  -- runs with the filter and falls back to the exact scan when it yields too few rows.
  -- (Nested, not one condition: a subquery in the IF's expression is part of its plan, whose
  -- index the executor locks on every call even when the subquery is skipped.)
  if document_ids is not null and metadata_filter is null then
    if (select pg_catalog.count(*)
          from (select
                  from public.document_chunks as c
                 where c.client_id = chunk_search_route.client_id
                   and c.document_id = any (chunk_search_route.document_ids)
                 limit exact_max + 1) as bounded) <= exact_max then
      return 'exact';
    end if;
  end if;
  if promoted then
    if share >= min_share then
      return 'tenant_and_shared_index';
    end if;
    return 'tenant_index';
  end if;
  if share is null or share >= min_share then
    return 'shared_index';
  end if;
  return 'exact';
end;
$$;

comment on function private.chunk_search_route(uuid, uuid[], jsonb) is
  'How private.search_embeddings searches one client: exact (at most renum.search_exact_max_rows rows in scope), tenant_index (the client''s own HNSW index, when promoted), tenant_and_shared_index (both graphs, merged, when promoted and holding at least renum.search_shared_min_share of the rows) or shared_index (the shared HNSW index, when the client holds at least renum.search_shared_min_share of the rows). See docs/retrieval.md.';

revoke all on function private.chunk_search_route(uuid, uuid[], jsonb) from public;
grant execute on function private.chunk_search_route(uuid, uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.chunk_search_route.sql

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
  metadata_filter jsonb default null
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

comment on function private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb) is
  'Up to candidate_count chunks of one client nearest to query_embedding, by walking the HNSW index (iterative scan, relaxed order: re-sort the result by distance). Used by public.search_embeddings above its exact-scan limit.';

revoke all on function private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb) from public;
grant execute on function private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.nearest_chunks_hnsw.sql

-- >>> sql/functions/private.nearest_chunks.sql
/* why: one call site in private.search_embeddings for every index walk: the route (from
   private.chunk_search_route) names it: 'tenant_index' (the tenant's own graph), 'shared_index'
   (the shared graph, filtered to the tenant) or, since 0025, 'tenant_and_shared_index': both
   walks, each taking candidate_count, merged. A chunk both walks found is returned once (same
   vector, same exact distance); the caller sorts by distance and keeps the nearest, so a
   neighbour one graph cannot reach is still found through the other.
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
                                                 metadata_filter) as w) as u
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
