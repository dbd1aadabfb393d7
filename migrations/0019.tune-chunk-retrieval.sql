-- depends: 0018.key-tenant-tables-by-client
-- transactional: false
--
-- 0019 tune-chunk-retrieval
-- what: 1. document_chunks.embedding is stored inline (storage main) instead of out of line in
--          the TOAST table;
--       2. the shared HNSW index is rebuilt with ef_construction = 128 (was 64), same name;
--       3. private.chunk_search_route checks cheapest first, one statement per check, and keeps
--          a tenant's bounded row count and share of the table for 60 seconds per session;
--       4. private.nearest_chunks_hnsw (the shared-index walk) in PL/pgSQL, its plan kept;
--       5. one walk function per promoted tenant (private.create_tenant_chunk_walk writes
--          private.nearest_chunks_t_<client hex> on promotion, private.drop_tenant_chunk_walk
--          removes it on demotion), called by private.nearest_chunks_tenant_index.
-- why (issue 12, measured in bench/results.md and docs/retrieval.md):
--   1. a 1536-d vector is 6 KB, above the 2 KB TOAST threshold, so every exact distance fetched
--      it through the TOAST index: an exact scan of 1,000 rows took 9.4 ms against 1.9 ms with the
--      vector in the row (20,000-row table, same data). A row of document_chunks now fills a page
--      of its own; content and metadata still move to TOAST first. Rows written before this
--      migration keep their TOAST copy until they are rewritten (`vacuum full
--      public.document_chunks` or pg_repack, see docs/operations.md); both layouts are read alike.
--   2. at ef_construction 64 the shared graph had "islands": some queries found 0 of their true
--      top 10 even unfiltered, and three builds of the same 200k rows gave 0.93-0.99 recall for
--      the tenant it serves; per-tenant indexes were already built at 128.
--   3. the single statement of 0018 locked 31 relations on every call (the registry, the table
--      and its indexes, the fifteen catalog relations behind pg_stats), beyond the 16 a backend
--      keeps on the lock manager's fast path; and the SQL-language shared walk was planned on
--      every call, locking every index of document_chunks (PostgreSQL 16);
--   5. the walk of a promoted tenant's partial index was planned on every call (a partial index
--      is used only for a literal tenant), locking every index of document_chunks: 20 relation
--      locks per search with two promoted tenants, 7 + one per promoted tenant on the table.
-- Safe on a live database: `set storage` takes a SHARE UPDATE EXCLUSIVE lock and rewrites
-- nothing; the new index is built concurrently beside the old one, which serves searches until
-- it is dropped concurrently, and the rename is a catalog update. Resumable: an interrupted
-- concurrent build leaves an invalid `document_chunks_embedding_hnsw_next`, which `renum-db
-- migrate` drops before it applies this migration again.

set lock_timeout = '10s';
set statement_timeout = 0; -- an index build on a large table may take long; it blocks no one

begin;
alter table public.document_chunks alter column embedding set storage main;
commit;

create index concurrently if not exists document_chunks_embedding_hnsw_next
  on public.document_chunks
  using hnsw (embedding extensions.vector_cosine_ops)
  with (m = 16, ef_construction = 128);

drop index concurrently if exists public.document_chunks_embedding_hnsw_idx;

-- The index keeps the name every tool and document uses (nothing refers to an index by name
-- at run time; the planner picks it by definition):
alter index if exists public.document_chunks_embedding_hnsw_next
  -- squawk-ignore renaming-object
  rename to document_chunks_embedding_hnsw_idx;

begin;

-- pgvector defines hnsw.* when its library loads; a non-superuser may name them in a function's
-- SET clause only once it is loaded (see 0007).
do $$ begin perform extensions.vector_dims('[1]'::extensions.vector); end $$; -- loads vector

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

-- Tenants promoted before this migration get their walk function now.
do $$
begin
  perform private.create_tenant_chunk_walk(t.client_id)
     from private.tenant_chunk_indexes as t
    where t.state = 'ready';
end
$$;

-- >>> sql/functions/private.chunk_search_route.sql
/* why: one place decides how a search finds a tenant's nearest chunks (private.search_embeddings):
   - 'exact': rank every candidate by exact distance. Right by construction, and the cheapest plan
     for few rows (since 0019 the vectors are stored inline: about 2 us per 1536-d row instead of
     10 us through TOAST). Chosen when the tenant, or the filtered subset, holds at most
     renum.search_exact_max_rows rows (default 1000).
   - 'tenant_index': walk the tenant's own partial HNSW index (registry
     private.tenant_chunk_indexes, state 'ready'). Its graph holds only the tenant's rows, so
     recall does not depend on the tenant's share of the table.
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
   the registry (one primary-key probe, never cached: a promotion or demotion applies to the next
   call); the tenant's rows, counted up to exact_max + 1 (an index scan of the (client_id, id)
   key): a small tenant is ranked exactly, filtered or not; for a larger tenant, a document scope
   without a metadata filter is counted, bounded, through the document key (statistics cannot say
   how many rows a scope keeps; a small scope is ranked exactly), while a metadata filter goes to
   the walk, which falls back to the exact scan if it yields too few rows (counting it read a
   heap page per row); only a tenant above the limit and not promoted needs its share of the
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
  promoted := exists (select
                        from private.tenant_chunk_indexes as t
                       where t.client_id = chunk_search_route.client_id
                         and t.state = 'ready');
  if promoted and document_ids is null and metadata_filter is null then
    return 'tenant_index';
  end if;

  -- The tenant's size, counted up to the limit, and its share of the table, kept per session
  -- for 60 seconds: '<rows>@<count bound>@<share, '' if unknown, 'n' if not needed>@<expiry>'.
  cache_key := 'renum.chunk_route_' || pg_catalog.replace(client_id::text, '-', '');
  cached := pg_catalog.current_setting(cache_key, true);
  if cached like '%@%@%@%'
     and pg_catalog.split_part(cached, '@', 2) = (exact_max + 1)::text
     and pg_catalog.split_part(cached, '@', 4)::double precision
         > extract(epoch from pg_catalog.clock_timestamp()) then
    tenant_rows := pg_catalog.split_part(cached, '@', 1)::bigint;
    share_text := pg_catalog.split_part(cached, '@', 3);
  else
    select pg_catalog.count(*) into tenant_rows
      from (select
              from public.document_chunks as c
             where c.client_id = chunk_search_route.client_id
             limit exact_max + 1) as bounded;
    share_text := 'n';
    cached := null;
  end if;
  if tenant_rows > exact_max and share_text = 'n' and not promoted then
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
  -- A document scope without a metadata filter is counted, bounded, through the
  -- (client_id, document_id, chunk_index) key alone: a small scope is ranked exactly. A
  -- metadata filter is not counted: that would read a heap page per row of the tenant until
  -- exact_max + 1 matches (measured 24-122 ms for a filter keeping 10% of 4k-154k rows); the walk
  -- runs with the filter and falls back to the exact scan when it yields too few rows.
  if document_ids is not null and metadata_filter is null
     and (select pg_catalog.count(*)
            from (select
                    from public.document_chunks as c
                   where c.client_id = chunk_search_route.client_id
                     and c.document_id = any (chunk_search_route.document_ids)
                   limit exact_max + 1) as bounded) <= exact_max then
    return 'exact';
  end if;
  if promoted then
    return 'tenant_index';
  end if;
  share := nullif(share_text, '')::double precision;
  if share is null or share >= min_share then
    return 'shared_index';
  end if;
  return 'exact';
end;
$$;

comment on function private.chunk_search_route(uuid, uuid[], jsonb) is
  'How private.search_embeddings searches one client: exact (at most renum.search_exact_max_rows rows in scope), tenant_index (the client''s own HNSW index, when promoted) or shared_index (the shared HNSW index, when the client holds at least renum.search_shared_min_share of the rows). See docs/retrieval.md.';

revoke all on function private.chunk_search_route(uuid, uuid[], jsonb) from public;
grant execute on function private.chunk_search_route(uuid, uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.chunk_search_route.sql

commit;

notify pgrst, 'reload schema';
