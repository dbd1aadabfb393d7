/* why: keyword and semantic search fused, for queries where exact words matter (names, codes,
   Portuguese terms an embedding blurs). Two ranked lists over the same tenant scope:
   - full text: document_chunks.fts (a generated tsvector, GIN-indexed) matched against the query
     parsed with websearch_to_tsquery in the text search configuration of every knowledge base in
     scope (Portuguese, English, ... per knowledge base; one parse per distinct language, OR-ed),
     ranked by ts_rank_cd in private.text_search_matches (security definer: the GIN index is
     unusable under RLS), over a bounded pool of 10 x depth matches (renum.hybrid_text_pool)
     plus every matching chunk of the semantic list: exact when the tenant has at most that many
     matches, bounded in cost when a broad text matches thousands (docs/retrieval.md);
   - semantic: private.search_embeddings (same scoping and validation, same tenant), ranked ids
     and similarities only (ranked_only, 0023: the chunks are joined once, for the winners);
   each list takes the top depth = 2 x match_count (at most 200), and they are fused by reciprocal rank
   fusion: score = full_text_weight / (rrf_k + text_position) + semantic_weight / (rrf_k +
   semantic_position). Unlike the usual recipe, every component is returned: similarity (always
   computed), text_rank, both positions (null when a list did not return the chunk) and score.
   Errors as search_embeddings, plus 22004/22023 for an empty query_text, negative weights, both
   weights zero, or rrf_k < 1. security invoker; volatile because it may record usage; generic
   plans (its statements name one tenant; planning them cost more than running them); without
   usage recording, the fusion and the final join are one statement (0021).
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
-- [retrieval, issue 12] one process, no JIT (0032): these plans are generic, so their costs
-- are an average tenant's (400k rows / 7 tenants: 60k rows), not the searched one's. From
-- that cost the planner launched two parallel workers for a 100-row tenant's exact scan
-- (5.6 ms instead of 0.5) and, for the majority tenant's shared walk, a parallel scan of the
-- whole table (90-108 ms instead of 7); where JIT is available it would compile every
-- execution of such a plan. A search reads one tenant: neither pays for itself here.
set max_parallel_workers_per_gather = 0
set jit = off
as $$
#variable_conflict use_column
declare
  doc_ids uuid[];
  depth integer;
  languages text[];
  config regconfig;
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

  -- One parse per distinct language in scope (usually one), OR-ed; each name mapped once
  -- (private.text_search_regconfig per knowledge base row cost 0.1 ms more).
  select pg_catalog.array_agg(distinct kb.text_search_config)
    into languages
    from public.knowledge_bases as kb
   where kb.client_id = tenant
     and (knowledge_base_ids is null or kb.id = any (knowledge_base_ids));
  if languages is not null then
    for i in 1 .. pg_catalog.cardinality(languages) loop
      config := private.text_search_regconfig(languages[i]);
      if config is not null then
        query := case when query is null then pg_catalog.websearch_to_tsquery(config, query_text)
                      else query operator(pg_catalog.||)
                           pg_catalog.websearch_to_tsquery(config, query_text) end;
      end if;
    end loop;
    if pg_catalog.numnode(query) = 0 then
      query := null;  -- only stop words: the text side contributes nothing
    end if;
  end if;

  select pg_catalog.array_agg(s.id order by s.pos), pg_catalog.array_agg(s.similarity order by s.pos)
    into semantic_ids, similarities
    from private.search_embeddings(
           tenant, query_embedding, depth, collection_ids, knowledge_base_ids, metadata_filter,
           null, ranked_only => true) with ordinality as s (id, document_id, collection_id, knowledge_base_id,
                                       content, metadata, chunk_index, similarity, pos);

  if usage_agent_id is null then
    -- The common case in one statement: fuse, keep the best match_count, join them.
    return query
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
      ),
      best as (
        select * from fused order by score desc, id limit match_count
      )
      select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
             c.chunk_index,
             coalesce(f.similarity,
                      nullif(1 - extensions.cosine_distance(c.embedding, query_embedding), 'NaN')),
             f.text_rank, f.semantic_position, f.text_position, f.score
        from best as f
        join public.document_chunks as c on c.client_id = tenant and c.id = f.id
        join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
        join public.knowledge_collections as k
          on k.client_id = d.client_id and k.id = d.collection_id
       order by f.score desc, f.id;
    return;
  end if;

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
