-- depends: 0020.speed-up-hybrid-search
--
-- 0021 tighten-hybrid-search
-- what: 1. document_chunks.fts is stored in the row (storage main) instead of out of line in the
--          TOAST table;
--       2. private.text_search_matches sizes the scope with private.chunk_search_route (cached
--          per session by private.search_embeddings) instead of reading pg_stats on every call,
--          reads a small document scope through the document key, and plans a larger scope with
--          an order by the primary key, so a common word stops after the pool instead of AND-ing
--          the tenant's whole key range with the word's whole posting list.
-- why: issue 12 target hybrid_search p50 <= 2x search_embeddings (measured 3.4-4.4x broad,
--      1.9-3.5x narrow at small scale before this migration):
--   1. since 0019 keeps the 6 KB vector in the row, the toaster moved fts out of line: every
--      text match tested or ranked was a TOAST index lookup (a 1,000-row tenant's text scan
--      6.1 ms); a tsvector is small and compresses, so it fits beside the vector;
--   2. pg_stats cost 0.5 ms and ~15 catalog locks per call; the BitmapAnd the planner picked
--      for a common word read the big tenant's whole key range (4 ms at 23k rows, growing).
-- Safe on a live database: `set storage` takes a SHARE UPDATE EXCLUSIVE lock and rewrites
-- nothing. Rows written before keep their TOAST copy of fts until rewritten (`vacuum full
-- public.document_chunks` or pg_repack, see docs/operations.md); both layouts are read alike.
-- Signatures, results, validation and SQLSTATEs are unchanged.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

alter table public.document_chunks alter column fts set storage main;

-- >>> sql/functions/private.text_search_matches.sql
/* why: the text side of private.hybrid_search, with a cost that grows neither with the number of
   chunks a text matches nor with the table (issue 12).
   - security definer, because the GIN index on document_chunks.fts is unusable under RLS:
     `tsvector @@ tsquery` is not leakproof, so PostgreSQL may not evaluate it before the policy's
     predicate and never makes it an index condition; a viewer's text search then scans the whole
     table (measured: 19 ms for a one-chunk match in a 60k table, as a service_role search through
     the index takes 0.1 ms). Bypassing RLS, it re-checks the tenant itself, as
     private.record_chunk_usage does: unless the request is the backend
     (private.request_is_backend), `tenant` must be the caller's own active client (42501).
     Every predicate names the tenant (client_id = tenant), so no other tenant's row is read.
   - bounded: it ranks (ts_rank_cd) at most `pool_size` matching chunks of the tenant in scope,
     the first in (client_id, id) order, plus every chunk of `semantic_ids` (the semantic list)
     that matches, and returns the `depth` best by rank (ties by id). When the tenant has at most
     pool_size matching chunks in scope, that is the exact text top-depth; above it (a broad
     text), see docs/retrieval.md "Hybrid search".
   - sized without pg_stats (migration 0021): the tenant's bounded row count that
     private.chunk_search_route keeps per session (private.search_embeddings has just refreshed
     it) says whether the tenant is small (within renum.search_exact_max_rows: its rows are read
     through the key, the match tested per row; fts is stored in the row since 0021, so that
     costs no TOAST fetch). Above it, the matching share of the semantic list (a sample of the
     tenant) tells a common word, whose matches a walk of the tenant's key meets early, from a
     rare one, served by the GIN posting list. Generic plans only: planning a statement on
     document_chunks (seven indexes) cost 1.2-1.6 ms, more than running it.
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
  cache_key text;
  cached text;
begin
  if tenant is null then
    raise exception using errcode = '22004', message = 'tenant is required';
  end if;
  if not private.request_is_backend()
     and private.current_client_id('viewer') is distinct from tenant then
    raise exception using
      errcode = '42501',
      message = 'text search is only allowed in the caller''s own client';
  end if;
  if query is null or pg_catalog.numnode(query) = 0 then
    return;
  end if;

  -- The matching chunks of the semantic list, ranked: always in the result, and a sample of
  -- the tenant that tells a common word from a rare one.
  if semantic_ids is not null then
    select pg_catalog.array_agg(c.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(c.fts, query))
      into semantic_hits, semantic_ranks
      from public.document_chunks as c
     where c.client_id = tenant
       and c.id = any (semantic_ids)
       and (c.fts operator(pg_catalog.||) ''::pg_catalog.tsvector) operator(pg_catalog.@@) query;
  end if;
  hits := coalesce(pg_catalog.cardinality(semantic_hits), 0);

  -- The pool: at most pool_size matching chunks of the tenant in scope, ranked.
  -- Small: the whole tenant within renum.search_exact_max_rows, read from the bounded count
  -- private.chunk_search_route keeps per session ('<rows>@<bound>@...', rows < bound), which
  -- private.search_embeddings has just refreshed; counted here if absent. Not the route itself:
  -- it also says 'exact' for a large tenant with a small share or a small document scope.
  cache_key := 'renum.chunk_route_' || pg_catalog.replace(tenant::text, '-', '');
  cached := pg_catalog.current_setting(cache_key, true);
  if cached is null or cached !~ '^[0-9]+@[0-9]+@' then
    perform private.chunk_search_route(tenant, null, null);
    cached := pg_catalog.current_setting(cache_key, true);
  end if;
  if cached ~ '^[0-9]+@[0-9]+@'
     and pg_catalog.split_part(cached, '@', 1)::bigint
         < pg_catalog.split_part(cached, '@', 2)::bigint then
    -- A small scope: its rows through the key, the match tested per row (the GIN posting list
    -- of a word common in other tenants costs more). `|| ''` keeps the GIN index out.
    select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
      into pool_ids, pool_ranks
      from (select c.id, c.fts
              from public.document_chunks as c
             where c.client_id = tenant
               and (c.fts operator(pg_catalog.||) ''::pg_catalog.tsvector)
                   operator(pg_catalog.@@) query
               and (document_ids is null or c.document_id = any (document_ids))
               and (metadata_filter is null or c.metadata @> metadata_filter)
             order by c.client_id, c.id
             limit pool_size) as p;
  else
    if hits >= 2 and hits * 10 >= pg_catalog.cardinality(semantic_ids) then
      -- A common word (in at least 10% of the semantic sample): the tenant's key walked in
      -- order, at most 20 x pool_size rows, until pool_size matches.
      select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
        into pool_ids, pool_ranks
        from (select w.id, w.fts
                from (select c.id, c.fts
                        from public.document_chunks as c
                       where c.client_id = tenant
                         and (document_ids is null or c.document_id = any (document_ids))
                         and (metadata_filter is null or c.metadata @> metadata_filter)
                       order by c.client_id, c.id
                       limit pool_size * 20) as w
               where (w.fts operator(pg_catalog.||) ''::pg_catalog.tsvector)
                     operator(pg_catalog.@@) query
               limit pool_size) as p;
    end if;
    if coalesce(pg_catalog.cardinality(pool_ids), 0) < pool_size then
      -- A rare word (or a walk that ended short): the GIN posting list, the tenant tested per
      -- row (`is true` keeps the tenant's key range out of the bitmap: AND-ing it read the big
      -- tenant's whole range, 4 ms at 23k rows).
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
  end if;

  -- The pool and the matching chunks of the semantic list, each chunk once, best first.
  return query
    select m.id, max(m.rank) as rank
      from (select p.id, p.rank
              from unnest(pool_ids, pool_ranks) as p (id, rank)
            union all
            select s.id, s.rank
              from unnest(semantic_hits, semantic_ranks) as s (id, rank)) as m
     group by m.id
     order by 2 desc, 1
     limit depth;
end;
$$;

comment on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) is
  'The text list of hybrid search: up to depth chunks of the tenant matching query, best ts_rank_cd first, ranked among at most pool_size matching chunks (the first by id) plus the matching semantic_ids (exact when the tenant has at most pool_size matches). The caller''s own client only, unless the request is the backend (42501).';

revoke all on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) from public, anon, authenticated, service_role;
grant execute on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.text_search_matches.sql

notify pgrst, 'reload schema';
