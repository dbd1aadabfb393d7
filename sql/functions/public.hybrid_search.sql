/* why: keyword and semantic search fused, as a browser calls it
   (`supabase.rpc('hybrid_search', {query_text, query_embedding})`), over the caller's own
   tenant only. query_embedding is a `real[]` (typed number[] for frontends, converted to
   pgvector's type here); no client_id parameter (the caller's own active client, 42501 without
   one). It returns public.hybrid_search_match rows, whose text_rank, semantic_position and
   text_position are null for a chunk that only one side found (a named composite type, so the
   generated types say `| null`). The fusion is private.hybrid_search, shared with
   backend.hybrid_search. security invoker; volatile because it may record usage. language
   plpgsql (0023, issue 12), as public.search_embeddings since 0022: PostgreSQL 16 re-plans the
   query of a non-inlined SQL function on every call (measured 80 us of a 0.84 ms hybrid search
   of a 100-row tenant). */
create or replace function public.hybrid_search(
  query_text text,
  query_embedding real[],
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
set plan_cache_mode = 'force_generic_plan'
as $$
begin
  return query
  select *
    from private.hybrid_search(
           private.require_client_id('viewer'),
           hybrid_search.query_text,
           hybrid_search.query_embedding::extensions.vector,
           hybrid_search.match_count,
           hybrid_search.collection_ids,
           hybrid_search.knowledge_base_ids,
           hybrid_search.metadata_filter,
           hybrid_search.full_text_weight,
           hybrid_search.semantic_weight,
           hybrid_search.rrf_k,
           hybrid_search.usage_agent_id,
           hybrid_search.usage_execution_id);
end;
$$;

comment on function public.hybrid_search(text, real[], integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) is
  'Hybrid search over the caller''s tenant: full text (websearch syntax, each knowledge base''s language) and semantic similarity fused by reciprocal rank fusion. Returns each chunk with similarity, text_rank, semantic_position, text_position (null when one side did not find it) and the fused score, best first. Same scoping, validation and errors as search_embeddings, plus 22004 empty query_text and 22023 negative weights, both weights 0 or rrf_k < 1.';

revoke all on function public.hybrid_search(text, real[], integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function public.hybrid_search(text, real[], integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) to authenticated;
