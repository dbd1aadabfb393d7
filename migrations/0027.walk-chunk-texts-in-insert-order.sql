-- depends: 0026.narrow-merged-shared-walk
--
-- 0027 walk-chunk-texts-in-insert-order
-- what: 1. private.document_chunk_texts gains seq (bigint identity: the order rows were written)
--          and the index (client_id, seq); private.text_search_matches walks a tenant's rows in
--          that order instead of its (client_id, id) key.
--       2. private.search_embeddings takes 3 x match_count candidates from an index walk (at
--          least 40) instead of 4 x.
-- why: issue 12, hybrid_search p50 <= 2x search_embeddings. Measured on the kept 424k-row
--       benchmark database (PostgreSQL 16, tenants' viewers, 20 queries x 2 rounds):
--       1. the text side's walk of a broad word (12% of the tenant) read 1,548 rows on 1,559
--          heap pages in key order (random uuids), 2.0 ms; in insert order 55 pages, 1.0 ms;
--       2. hybrid's semantic list (depth 20) asked the walk for 80 candidates, past ef_search
--          64, so the iterative scan ran a second round: 15-30% slower than 60, and recall@20
--          against exact 1.000 at 4k-10k rows either way (0.9988 / 1.000 at 25k).
--       Together, hybrid broad over search went from 1.93x to 1.43x (4k rows) and 1.88x to
--       1.36x (25k rows); search_embeddings at match_count 10 is unchanged (40 candidates).
-- cost: adding an identity column rewrites the side table under an access exclusive lock, which
--       blocks chunk writes (its insert trigger) and hybrid searches while it runs: 1.2 s for
--       424,000 rows here, about 3 s per million; the index build after it is in the same
--       transaction (the table is already locked; concurrently cannot run in a transaction).

set local lock_timeout = '10s';
set local statement_timeout = '30min';

do $$ begin perform extensions.vector_dims('[1]'::extensions.vector); end $$; -- loads vector

-- A rewrite (see cost above): a side table of ~40 rows a page, derived from document_chunks.
-- squawk-ignore adding-field-with-default
alter table private.document_chunk_texts add column seq bigint generated always as identity;

comment on column private.document_chunk_texts.seq is
  'The order rows were written (identity): private.text_search_matches walks a tenant''s rows by (client_id, seq), so rows written together are read from the same pages.';

-- squawk-ignore require-concurrent-index-creation
create index document_chunk_texts_walk_idx
  on private.document_chunk_texts (client_id, seq);

analyze private.document_chunk_texts;

-- >>> sql/functions/private.text_search_matches.sql
/* why: the text side of private.hybrid_search, with a cost that grows neither with the number of
   chunks a text matches nor with the table (issue 12).
   - security definer, because the GIN index on document_chunks.fts is unusable under RLS:
     `tsvector @@ tsquery` is not leakproof, so PostgreSQL may not evaluate it before the policy's
     predicate and never makes it an index condition; a viewer's text search then scans the whole
     table (measured: 19 ms for a one-chunk match in a 60k table, as a service_role search through
     the index takes 0.1 ms); and private.document_chunk_texts is not readable by API roles.
     Bypassing RLS, it re-checks the tenant itself, as private.record_chunk_usage does: unless the
     request is the backend (private.request_is_backend), `tenant` must be the caller's own active
     client (42501). Every predicate names the tenant (client_id = tenant).
   - bounded: it ranks (ts_rank_cd) at most `pool_size` matching chunks of the tenant in scope,
     plus every chunk of `semantic_ids` (the semantic list) that matches, and returns the `depth`
     best by rank (ties by id). When the tenant has at most pool_size matching chunks in scope,
     that is the exact text top-depth; above it (a broad text), see docs/retrieval.md "Hybrid
     search".
   - cheap per chunk (migration 0021): it reads the chunks' fts from private.document_chunk_texts
     (client_id, id, document_id, fts: ~40 rows a page) instead of document_chunks, where every row
     is a page of its own (the 6 KB vector) and fts was a TOAST fetch. A small tenant (within
     renum.search_exact_max_rows, known from the bounded count private.chunk_search_route keeps
     per session, which private.search_embeddings has just refreshed: no pg_stats) is walked
     whole in insert order. Insert order (0027): every walk follows the side table's
     (client_id, seq) index, seq being an identity, so rows written together are read together,
     tens to a page; the (client_id, id) key of 0021 met its rows in random order, one heap page
     per row (a 12% word in a 25k-row tenant: 1,559 pages for 1,548 rows, 2.0 ms; 55 pages and
     1.0 ms in insert order). Above it, a common word, whose matches a walk meets early (bounded
     to 50 x pool_size rows), is told from a rare one, served by the GIN index of
     document_chunks, by the matching share of the semantic list (a sample of the tenant) or,
     when that sample says rare, by the tenant's first 100 rows in insert order (0023: GIN's bitmap of a
     word in 12% of a 400k table cost 26 ms whatever the tenant's size, and a sample of 20 misses
     such a word one time in four). A metadata filter (not in the side table) reads
     document_chunks; so does a document scope of a larger tenant (through the document key when
     it holds fewer than 5 x pool_size chunks, else GIN). Generic plans only: planning a
     statement on document_chunks (seven indexes) cost 1.2-1.6 ms, more than running it.
   Returns the ranked ids, best first. stable (it only reads); plpgsql for the check. */
create or replace function private.text_search_matches(
  tenant uuid,
  query tsquery,
  depth integer,
  pool_size integer,
  semantic_ids uuid[] default null,
  document_ids uuid[] default null,
  metadata_filter jsonb default null
)
returns table (id uuid, rank real)
language plpgsql
stable
security definer
set search_path = ''
-- its statements name one tenant; a generic plan serves them (planning costs more than running)
set plan_cache_mode = 'force_generic_plan'
as $$
#variable_conflict use_column
declare
  pool_ids uuid[];
  pool_ranks real[];
  semantic_hits uuid[];
  semantic_ranks real[];
  hits integer;
  probe_hits integer;
  cache_key text;
  cached text;
  small boolean;
  walked boolean := false;
begin
  if tenant is null then
    raise exception using errcode = '22004', message = 'tenant is required';
  end if;
  -- The caller's own client first (cheap); the backend test reads pg_roles (0.14 ms).
  if private.current_client_id('viewer') is distinct from tenant
     and not private.request_is_backend() then
    raise exception using
      errcode = '42501',
      message = 'text search is only allowed in the caller''s own client';
  end if;
  if query is null or pg_catalog.numnode(query) = 0 then
    return;
  end if;

  -- Small: the whole tenant within renum.search_exact_max_rows ('<rows>@<bound>@...', rows <
  -- bound, as private.chunk_search_route keeps it; counted here if absent). Not the route
  -- itself: it also says 'exact' for a large tenant with a small share or a small document scope.
  -- A promoted tenant has no count (the route answers it from the registry alone): it is not
  -- small (0023: a null here sent every text of a promoted tenant to the GIN index).
  cache_key := 'renum.chunk_route_' || pg_catalog.replace(tenant::text, '-', '');
  cached := pg_catalog.current_setting(cache_key, true);
  if cached is null or cached !~ '^[0-9]+@[0-9]+@' then
    perform private.chunk_search_route(tenant, null, null);
    cached := pg_catalog.current_setting(cache_key, true);
  end if;
  small := coalesce(cached ~ '^[0-9]+@[0-9]+@'
                    and pg_catalog.split_part(cached, '@', 1)::bigint
                        < pg_catalog.split_part(cached, '@', 2)::bigint,
                    false);

  -- A small tenant without a metadata filter: its packed rows in insert order until pool_size
  -- matches (all of them, unless the text is broad).
  if small and metadata_filter is null then
    select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
      into pool_ids, pool_ranks
      from (select t.id, t.fts
              from private.document_chunk_texts as t
             where t.client_id = tenant
               and (document_ids is null or t.document_id = any (document_ids))
               and t.fts operator(pg_catalog.@@) query
             order by t.client_id, t.seq
             limit pool_size) as p;
    walked := true;
  end if;

  -- The matching chunks of the semantic list, ranked: always in the result, and a sample of
  -- the tenant that tells a common word from a rare one. A small tenant's walk has met them
  -- unless it filled the pool.
  if semantic_ids is not null
     and (not walked or coalesce(pg_catalog.cardinality(pool_ids), 0) >= pool_size) then
    select pg_catalog.array_agg(t.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(t.fts, query))
      into semantic_hits, semantic_ranks
      from private.document_chunk_texts as t
     where t.client_id = tenant
       and t.id = any (semantic_ids)
       and t.fts operator(pg_catalog.@@) query;
  end if;
  hits := coalesce(pg_catalog.cardinality(semantic_hits), 0);

  if not walked and not small and metadata_filter is null and document_ids is null then
    -- A larger tenant: a word common in the tenant is walked in insert order (its matches come
    -- early: at most 50 x pool_size rows are read), a rare one goes to the GIN index. Common:
    -- at least 2 hits and a tenth of the semantic list, or else (a sample of 20 misses a word
    -- in 12% of the chunks one time in four, and GIN's bitmap of such a word cost 26 ms at
    -- 400k rows, issue 12) at least 2 matches among the tenant's first 100 rows: then
    -- the word is in about 2% of them, and 50 x pool_size rows hold pool_size matches.
    if not (hits >= 2 and hits * 10 >= pg_catalog.cardinality(semantic_ids)) then
      select pg_catalog.count(*)::integer into probe_hits
        from (select t.fts
                from private.document_chunk_texts as t
               where t.client_id = tenant
               order by t.client_id, t.seq
               limit 100) as w
       where w.fts operator(pg_catalog.@@) query;
    end if;
    if probe_hits is null or probe_hits >= 2 then
      select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
        into pool_ids, pool_ranks
        from (select w.id, w.fts
                from (select t.id, t.fts
                        from private.document_chunk_texts as t
                       where t.client_id = tenant
                       order by t.client_id, t.seq
                       limit pool_size * 50) as w
               where w.fts operator(pg_catalog.@@) query
               limit pool_size) as p;
      -- A walk that ended short leaves the pool to the paths below.
      walked := coalesce(pg_catalog.cardinality(pool_ids), 0) >= pool_size;
    end if;
  end if;

  if walked then
    -- the pool is full (or holds every match of a small tenant)
  elsif small then
    -- A small tenant with a metadata filter: its rows of document_chunks through the key, the
    -- match tested per row (`|| ''` keeps the GIN index out of this plan).
    select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
      into pool_ids, pool_ranks
      from (select c.id, c.fts
              from public.document_chunks as c
             where c.client_id = tenant
               and (c.fts operator(pg_catalog.||) ''::pg_catalog.tsvector)
                   operator(pg_catalog.@@) query
               and (document_ids is null or c.document_id = any (document_ids))
               and c.metadata @> metadata_filter
             order by c.client_id, c.id
             limit pool_size) as p;
  elsif document_ids is not null
        and (select pg_catalog.count(*)
               from (select
                       from public.document_chunks as c
                      where c.client_id = tenant
                        and c.document_id = any (document_ids)
                      limit pool_size * 5) as bounded) < pool_size * 5 then
    -- A small document scope of a larger tenant (fewer than 5 x pool_size chunks, counted
    -- through the document key): its rows through that key, the match tested per row.
    select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
      into pool_ids, pool_ranks
      from (select c.id, c.fts
              from public.document_chunks as c
             where c.client_id = tenant
               and c.document_id = any (document_ids)
               and (c.fts operator(pg_catalog.||) ''::pg_catalog.tsvector)
                   operator(pg_catalog.@@) query
               and (metadata_filter is null or c.metadata @> metadata_filter)
             limit pool_size) as p;
  else
    -- A rare word (or a walk that ended short, a metadata filter, or a large scope): the GIN
    -- posting list, the tenant tested per row (`is true` keeps the tenant's key range out of
    -- the bitmap: AND-ing it read the big tenant's whole range, 4 ms at 23k rows and growing
    -- with the tenant).
    select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
      into pool_ids, pool_ranks
      from (select c.id, c.fts
              from public.document_chunks as c
             where c.fts operator(pg_catalog.@@) query
               and (c.client_id = tenant) is true
               and (document_ids is null or c.document_id = any (document_ids))
               and (metadata_filter is null or c.metadata @> metadata_filter)
             limit pool_size) as p;
  end if;

  -- The pool and the matching semantic chunks, each chunk once (union all + max: a plain union
  -- hashes the ranks as well and measured 3-4x slower), best first.
  return query
    select m.id, max(m.rank) as rank
      from (select p.id, p.rank from unnest(pool_ids, pool_ranks) as p (id, rank)
            union all
            select s.id, s.rank from unnest(semantic_hits, semantic_ranks) as s (id, rank)) as m
     group by m.id
     order by 2 desc, 1
     limit depth;
end;
$$;

comment on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) is
  'The text list of hybrid search: up to depth chunks of the tenant matching query, best ts_rank_cd first, ranked among at most pool_size matching chunks (the first in insert order) plus the matching semantic_ids (exact when the tenant has at most pool_size matches). The caller''s own client only, unless the request is the backend (42501).';

revoke all on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) from public, anon, authenticated, service_role;
grant execute on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.text_search_matches.sql

-- >>> sql/functions/private.search_embeddings.sql
/* why: semantic search over one tenant's chunks, right for every tenant size.
   The common recipe (order by embedding <=> query limit k over an HNSW index, RLS filtering the
   rows) fails small tenants: pgvector filters after the index scan, so a tenant holding 0.2% of
   the rows gets almost nothing back. This function decides the plan per call:
   - its callers resolve the one tenant to search (public.search_embeddings: the user's own
     client; backend.search_embeddings: the client the backend names) and it puts an explicit
     `client_id = <tenant>` predicate beside RLS, so the planner sees the tenant;
   - private.chunk_search_route chooses the plan from the tenant's size and share of the table
     (planner statistics) and its per-tenant index (registry private.tenant_chunk_indexes):
     'exact' ranks every candidate by exact cosine distance through the tenant's btree index
     (recall 1.0; written as extensions.cosine_distance(...) so no HNSW index is used);
     'tenant_index' walks the tenant's own partial HNSW index; 'shared_index' walks the shared
     one filtering to the tenant (private.nearest_chunks). A walk takes 3 x match_count
     candidates (at least 40; 4 x before 0027: at ef_search 64 a depth-20 list asked for 80,
     a second round of the iterative scan for 15-30% more time and no better recall) and keeps
     the match_count nearest by exact distance; if that
     yields fewer than match_count rows (a very selective filter), the exact scan runs instead.
     See docs/retrieval.md.
   A chunk whose stored embedding has no usable norm (NaN distance, sorted last) is never
   returned, so similarity is never NaN.
   Validation fails fast with 22004 (null) or 22023 (wrong dimension, a norm that is zero or not
   finite in pgvector's single precision, match_count
   outside 1..200, metadata_filter not an object, min_similarity outside [-1, 1]); pgvector itself
   rejects NaN and infinite components. (Multi-array unnest(a, b) is FROM-clause syntax that
   cannot be schema-qualified; pg_catalog is always searched first, so it is still safe.) When usage_agent_id is given, the returned chunks are
   recorded in document_usage_stats (private.record_chunk_usage) in the same transaction.
   security invoker: RLS applies on top of the explicit tenant predicate. volatile, because it
   may record usage. Called through public.search_embeddings and backend.search_embeddings,
   the only places that decide the tenant. Every route ranks first (ids and distances only) and then joins the winners to their chunk,
   document and collection by primary key (0022): the one-statement exact path of 0019 sorted
   whole rows and, with a kept generic plan, joined documents by a sequential scan per result
   row (the plan a small documents table gets). ranked_only (0023) returns the ranked ids and
   similarities without the join (the other columns null): private.hybrid_search's semantic
   list, which joins only the fused winners. */
create or replace function private.search_embeddings(
  tenant uuid,
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  min_similarity double precision default null,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null,
  ranked_only boolean default false
)
returns table (
  id uuid,
  document_id uuid,
  collection_id uuid,
  knowledge_base_id uuid,
  content text,
  metadata jsonb,
  chunk_index integer,
  similarity double precision
)
language plpgsql
volatile
security invoker
set search_path = ''
-- [retrieval, issue 12] generic plans: planning these statements (seven indexes on
-- document_chunks) costs more than running them for a small tenant (0.55-0.9 ms against
-- 0.2-0.3 ms); every statement filters on client_id = <one tenant>, which a generic plan serves.
set plan_cache_mode = 'force_generic_plan'
as $$
#variable_conflict use_column
declare
  doc_ids uuid[];
  route text;
  ids uuid[];
  distances double precision[];
begin
  if query_embedding is null then
    raise exception using errcode = '22004', message = 'query_embedding is required';
  end if;
  if extensions.vector_dims(query_embedding) <> 1536 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('query_embedding has %s dimensions; chunks are embedded with 1536',
                                  extensions.vector_dims(query_embedding));
  end if;
  -- pgvector computes cosine distance in single precision: a norm that is zero or infinite
  -- there (1536 x 1e-45 squares to 0; 1e20 squares to infinity) makes every distance NaN, even
  -- when the double-precision vector_norm is positive and finite. Ask pgvector itself.
  if extensions.cosine_distance(query_embedding, query_embedding) = 'NaN'::float8 then
    raise exception using
      errcode = '22023',
      message = 'query_embedding must have a non-zero, finite norm in single precision';
  end if;
  if match_count is null or match_count < 1 or match_count > 200 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('match_count must be between 1 and 200, got %s', match_count);
  end if;
  if metadata_filter is not null and pg_catalog.jsonb_typeof(metadata_filter) <> 'object' then
    raise exception using errcode = '22023', message = 'metadata_filter must be a JSON object';
  end if;
  if min_similarity is not null
     and (min_similarity = 'NaN'::float8 or min_similarity < -1 or min_similarity > 1) then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('min_similarity must be between -1 and 1, got %s', min_similarity);
  end if;

  if collection_ids is not null or knowledge_base_ids is not null then
    doc_ids := private.scoped_document_ids(tenant, collection_ids, knowledge_base_ids);
  end if;

  -- [retrieval route, issue 12: begin] private.chunk_search_route picks 'exact', 'tenant_index'
  -- or 'shared_index'; an index walk over-fetches 4 x match_count (at least 40) and keeps the
  -- match_count nearest by exact distance; a walk that yields fewer than match_count rows (a
  -- very selective filter) falls back to the exact scan below.
  route := private.chunk_search_route(tenant, doc_ids, metadata_filter);
  if route <> 'exact' then
    select pg_catalog.array_agg(n.id order by n.distance, n.id),
           pg_catalog.array_agg(n.distance order by n.distance, n.id)
      into ids, distances
      from (select h.id, h.distance
              from private.nearest_chunks(route, tenant, query_embedding,
                                          greatest(match_count * 3, 40),
                                          doc_ids, metadata_filter) as h
             order by h.distance, h.id
             limit match_count) as n;
  end if;

  if route = 'exact' or coalesce(pg_catalog.cardinality(ids), 0) < match_count then
  -- [retrieval route: end]
    select pg_catalog.array_agg(n.id order by n.distance, n.id),
           pg_catalog.array_agg(n.distance order by n.distance, n.id)
      into ids, distances
      from (select c.id, extensions.cosine_distance(c.embedding, query_embedding) as distance
              from public.document_chunks as c
             where c.client_id = tenant
               and c.embedding is not null
               and (doc_ids is null or c.document_id = any (doc_ids))
               and (metadata_filter is null or c.metadata @> metadata_filter)
             order by 2, 1
             limit match_count) as n;
  end if;

  -- Chunks without a usable distance (NaN) and below min_similarity are dropped in the final
  -- statement; when usage is recorded, the same filter runs first so that exactly the returned
  -- chunks are recorded (a separate statement only then: each one costs an executor start).
  if usage_agent_id is not null and ids is not null then
    select pg_catalog.array_agg(r.id order by r.ord), pg_catalog.array_agg(r.distance order by r.ord)
      into ids, distances
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
     where r.distance <> 'NaN'::float8
       and (min_similarity is null or 1 - r.distance >= min_similarity);
    if ids is not null then
      perform private.record_chunk_usage(tenant, usage_agent_id, ids, usage_execution_id);
    end if;
  end if;

  if ranked_only then
    -- private.hybrid_search's semantic list: ids and similarities only (it joins its own
    -- winners; joining these 2 x match_count rows here was wasted).
    return query
      select r.id, null::uuid, null::uuid, null::uuid, null::text, null::jsonb, null::integer,
             1 - r.distance
        from unnest(ids, distances) with ordinality as r (id, distance, ord)
       where r.distance <> 'NaN'::float8
         and (min_similarity is null or 1 - r.distance >= min_similarity)
       order by r.ord;
    return;
  end if;
  return query
    select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
           c.chunk_index, 1 - r.distance
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
      join public.document_chunks as c on c.client_id = tenant and c.id = r.id
      join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
      join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
     where r.distance <> 'NaN'::float8
       and (min_similarity is null or 1 - r.distance >= min_similarity)
     order by r.ord;
end;
$$;

comment on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, boolean) is
  'Semantic search over one tenant''s chunks (the tenant is resolved by the caller: public.search_embeddings or backend.search_embeddings). Exact for small tenants and small filtered sets, otherwise an HNSW walk of the tenant''s own index (promoted tenants) or of the shared index (docs/retrieval.md).';

revoke all on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, boolean) from public, anon, authenticated, service_role;
grant execute on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, boolean) to authenticated, service_role;
-- <<< sql/functions/private.search_embeddings.sql
