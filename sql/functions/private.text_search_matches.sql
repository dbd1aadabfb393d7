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
