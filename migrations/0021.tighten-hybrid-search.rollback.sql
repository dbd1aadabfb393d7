-- 0021 tighten-hybrid-search (rollback): private.text_search_matches as 0020 left it,
-- private.document_chunk_texts and its triggers dropped, document_chunks.fts back to out-of-line
-- storage (extended).

set local lock_timeout = '10s';
set local statement_timeout = '5min';

alter table public.document_chunks alter column fts set storage extended;

drop trigger if exists document_chunks_update_texts on public.document_chunks;
drop trigger if exists document_chunks_insert_texts on public.document_chunks;
drop function if exists private.tg_document_chunks__update_texts();
drop function if exists private.tg_document_chunks__insert_texts();

-- >>> sql/functions/private.text_search_matches.sql
/* why: the text side of private.hybrid_search, with a cost that does not grow with the number of
   chunks a text matches (issue 12: 138 ms for a big tenant when the text matched 12% of it).
   - security definer, because the GIN index on document_chunks.fts is unusable under RLS:
     `tsvector @@ tsquery` is not leakproof, so PostgreSQL may not evaluate it before the policy's
     predicate and never makes it an index condition; a viewer's text search then scans the whole
     table (measured: 19 ms for a one-chunk match in a 60k table, as a service_role search through
     the index takes 0.1 ms). Bypassing RLS, it re-checks the tenant itself, as
     private.record_chunk_usage does: unless the request is the backend
     (private.request_is_backend), `tenant` must be the caller's own active client (42501).
     Every predicate names the tenant (client_id = tenant), so no other tenant's row is read.
   - bounded: it ranks (ts_rank_cd) at most `pool_size` matching chunks of the tenant, taken in
     the order the planner's scan yields them (physical order), plus every chunk of
     `semantic_ids` (the semantic list) that matches, and returns the `depth` best by rank
     (ties by id). When the tenant has at most pool_size matching chunks in scope, that is the
     exact text top-depth; above it (a broad text), see docs/retrieval.md "Hybrid search".
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
as $$
#variable_conflict use_column
declare
  pool_ids uuid[];
  pool_ranks real[];
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

  -- The pool: at most pool_size matching chunks of the tenant, ranked.
  if coalesce((select e.tenant_rows <= 1000 from private.chunk_tenant_estimate(tenant) as e),
              false) then
    -- A small tenant: its own rows through the primary key, the match tested per row (the GIN
    -- posting list of a word common in other tenants costs more: 0.7 ms against 0.14-0.22 ms
    -- for 100 rows). `|| ''` keeps the GIN index out of this plan, which may then be cached.
    select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
      into pool_ids, pool_ranks
      from (select c.id, c.fts
              from public.document_chunks as c
             where c.client_id = tenant
               and (c.fts operator(pg_catalog.||) ''::pg_catalog.tsvector)
                   operator(pg_catalog.@@) query
               and (document_ids is null or c.document_id = any (document_ids))
               and (metadata_filter is null or c.metadata @> metadata_filter)
             limit pool_size) as p;
  else
    -- Larger: planned for this call with the values known (EXECUTE: a one-shot plan), so the
    -- planner picks from this tenant's and this word's statistics: the GIN index for a rare
    -- word, a bitmap AND of GIN and the tenant's key range, or the tenant's rows in order
    -- stopping after pool_size matches for a common one. A constant statement, parameters only.
    execute 'select pg_catalog.array_agg(p.id),
                    pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, $2))
               from (select c.id, c.fts
                       from public.document_chunks as c
                      where c.client_id = $1
                        and c.fts operator(pg_catalog.@@) $2
                        and ($3 is null or c.document_id = any ($3))
                        and ($4 is null or c.metadata operator(pg_catalog.@>) $4)
                      limit $5) as p'
      into pool_ids, pool_ranks
      using tenant, query, document_ids, metadata_filter, pool_size;
  end if;

  -- The pool and the matching chunks of the semantic list, each chunk once (union all + max:
  -- a plain union hashes the ranks as well and measured 3-4x slower), best first.
  return query
    select m.id, max(m.rank) as rank
      from (select p.id, p.rank
              from unnest(pool_ids, pool_ranks) as p (id, rank)
            union all
            select c.id, pg_catalog.ts_rank_cd(c.fts, query)
              from public.document_chunks as c
             where semantic_ids is not null
               and c.client_id = tenant
               and c.id = any (semantic_ids)
               and c.fts operator(pg_catalog.@@) query) as m
     group by m.id
     order by 2 desc, 1
     limit depth;
end;
$$;

comment on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) is
  'The text list of hybrid search: up to depth chunks of the tenant matching query, best ts_rank_cd first, ranked among at most pool_size matching chunks plus the matching semantic_ids (exact when the tenant has at most pool_size matches). The caller''s own client only, unless the request is the backend (42501).';

revoke all on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) from public, anon, authenticated, service_role;
grant execute on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.text_search_matches.sql

drop table if exists private.document_chunk_texts;

notify pgrst, 'reload schema';
