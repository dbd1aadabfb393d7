-- 0021 tighten-hybrid-search (rollback): private.text_search_matches and private.hybrid_search as
-- 0020 left them, private.document_chunk_texts and its triggers dropped.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

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

-- >>> sql/functions/private.hybrid_search.sql
/* why: keyword and semantic search fused, for queries where exact words matter (names, codes,
   Portuguese terms an embedding blurs). Two ranked lists over the same tenant scope:
   - full text: document_chunks.fts (a generated tsvector, GIN-indexed) matched against the query
     parsed with websearch_to_tsquery in the text search configuration of every knowledge base in
     scope (Portuguese, English, ... per knowledge base; one parse per distinct language, OR-ed),
     ranked by ts_rank_cd in private.text_search_matches (security definer: the GIN index is
     unusable under RLS), over a bounded pool of 10 x depth matches (renum.hybrid_text_pool)
     plus every matching chunk of the semantic list: exact when the tenant has at most that many
     matches, bounded in cost when a broad text matches thousands (docs/retrieval.md);
   - semantic: private.search_embeddings (same scoping and validation, same tenant);
   each list takes the top depth = 2 x match_count (at most 200), and they are fused by reciprocal rank
   fusion: score = full_text_weight / (rrf_k + text_position) + semantic_weight / (rrf_k +
   semantic_position). Unlike the usual recipe, every component is returned: similarity (always
   computed), text_rank, both positions (null when a list did not return the chunk) and score.
   Errors as search_embeddings, plus 22004/22023 for an empty query_text, negative weights, both
   weights zero, or rrf_k < 1. security invoker; volatile because it may record usage; generic
   plans (its statements name one tenant; planning them cost more than running them).
   Returns public.hybrid_search_match, a named composite type, because a row found by one list
   only has null text_rank / positions: PostgREST's type generator types `returns table` columns
   as never null but composite fields as nullable. Called through public.hybrid_search and
   backend.hybrid_search, which decide the tenant. */
create or replace function private.hybrid_search(
  tenant uuid,
  query_text text,
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  full_text_weight double precision default 1,
  semantic_weight double precision default 1,
  rrf_k integer default 50,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null
)
returns setof public.hybrid_search_match
language plpgsql
volatile
security invoker
set search_path = ''
-- generic plans: planning these statements (joins over document_chunks and its indexes) costs
-- more than running them for a small tenant; each names one tenant, which a generic plan serves.
set plan_cache_mode = 'force_generic_plan'
as $$
#variable_conflict use_column
declare
  doc_ids uuid[];
  depth integer;
  configs regconfig[];
  query tsquery;
  pool integer;
  semantic_ids uuid[];
  ids uuid[];
  similarities double precision[];
  text_ranks real[];
  semantic_positions integer[];
  text_positions integer[];
  scores double precision[];
begin
  if query_text is null or pg_catalog.btrim(query_text) = '' then
    raise exception using errcode = '22004', message = 'query_text is required';
  end if;
  if full_text_weight is null or semantic_weight is null
     or full_text_weight < 0 or semantic_weight < 0
     or full_text_weight = 'NaN'::float8 or semantic_weight = 'NaN'::float8
     or (full_text_weight = 0 and semantic_weight = 0) then
    raise exception using
      errcode = '22023',
      message = 'full_text_weight and semantic_weight must be >= 0 and not both 0';
  end if;
  if rrf_k is null or rrf_k < 1 then
    raise exception using errcode = '22023', message = pg_catalog.format('rrf_k must be >= 1, got %s', rrf_k);
  end if;
  if match_count is null or match_count < 1 or match_count > 200 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('match_count must be between 1 and 200, got %s', match_count);
  end if;
  if collection_ids is not null or knowledge_base_ids is not null then
    doc_ids := private.scoped_document_ids(tenant, collection_ids, knowledge_base_ids);
  end if;
  depth := least(200, match_count * 2);
  pool := coalesce(nullif(pg_catalog.current_setting('renum.hybrid_text_pool', true), '')::integer,
                   10 * depth);

  -- One parse per distinct language in scope (usually one), OR-ed.
  select pg_catalog.array_agg(distinct private.text_search_regconfig(kb.text_search_config))
    into configs
    from public.knowledge_bases as kb
   where kb.client_id = tenant
     and (knowledge_base_ids is null or kb.id = any (knowledge_base_ids));
  if configs is not null then
    query := pg_catalog.websearch_to_tsquery(configs[1], query_text);
    for i in 2 .. pg_catalog.cardinality(configs) loop
      query := query operator(pg_catalog.||) pg_catalog.websearch_to_tsquery(configs[i], query_text);
    end loop;
    if pg_catalog.numnode(query) = 0 then
      query := null;  -- only stop words: the text side contributes nothing
    end if;
  end if;

  select pg_catalog.array_agg(s.id order by s.pos), pg_catalog.array_agg(s.similarity order by s.pos)
    into semantic_ids, similarities
    from private.search_embeddings(
           tenant, query_embedding, depth, collection_ids, knowledge_base_ids, metadata_filter,
           null) with ordinality as s (id, document_id, collection_id, knowledge_base_id,
                                       content, metadata, chunk_index, similarity, pos);

  with semantic as (
    select s.id, s.similarity, s.pos
      from unnest(semantic_ids, similarities) with ordinality as s (id, similarity, pos)
  ),
  lexical as (
    select t.id, t.rank, t.pos
      from private.text_search_matches(tenant, query, depth, pool, semantic_ids, doc_ids,
                                       metadata_filter) with ordinality as t (id, rank, pos)
  ),
  fused as (
    select coalesce(s.id, l.id) as id, s.similarity, s.pos::integer as semantic_position,
           l.pos::integer as text_position, l.rank as text_rank,
           coalesce(full_text_weight / (rrf_k + l.pos), 0)
           + coalesce(semantic_weight / (rrf_k + s.pos), 0) as score
      from semantic as s
      full join lexical as l on l.id = s.id
  )
  select pg_catalog.array_agg(f.id order by f.score desc, f.id),
         pg_catalog.array_agg(f.similarity order by f.score desc, f.id),
         pg_catalog.array_agg(f.text_rank order by f.score desc, f.id),
         pg_catalog.array_agg(f.semantic_position order by f.score desc, f.id),
         pg_catalog.array_agg(f.text_position order by f.score desc, f.id),
         pg_catalog.array_agg(f.score order by f.score desc, f.id)
    into ids, similarities, text_ranks, semantic_positions, text_positions, scores
    from (select * from fused order by score desc, id limit match_count) as f;

  if usage_agent_id is not null and ids is not null then
    perform private.record_chunk_usage(tenant, usage_agent_id, ids, usage_execution_id);
  end if;

  return query
    select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
           c.chunk_index,
           coalesce(r.similarity,
                    nullif(1 - extensions.cosine_distance(c.embedding, query_embedding), 'NaN')),
           r.text_rank, r.semantic_position, r.text_position, r.score
      from unnest(ids, similarities, text_ranks, semantic_positions, text_positions,
                             scores)
             with ordinality as r (id, similarity, text_rank, semantic_position, text_position,
                                   score, ord)
      join public.document_chunks as c on c.client_id = tenant and c.id = r.id
      join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
      join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
     order by r.ord;
end;
$$;

comment on function private.hybrid_search(uuid, text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) is
  'Hybrid search over one tenant (resolved by public.hybrid_search or backend.hybrid_search): full text and semantic similarity fused by reciprocal rank fusion, every component score returned.';

revoke all on function private.hybrid_search(uuid, text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function private.hybrid_search(uuid, text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) to authenticated, service_role;
-- <<< sql/functions/private.hybrid_search.sql

notify pgrst, 'reload schema';
