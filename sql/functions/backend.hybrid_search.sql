/* why: the backend's hybrid search: a pgvector embedding and the client it acts for (22004
   without it). Same fusion as public.hybrid_search (private.hybrid_search). Not exposed to
   browsers (schema backend). security invoker; volatile because it may record usage.
   language plpgsql (0023), which keeps its plan, as public.hybrid_search. */
create or replace function backend.hybrid_search(
  query_text text,
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  full_text_weight double precision default 1,
  semantic_weight double precision default 1,
  rrf_k integer default 50,
  client_id uuid default null,
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
           private.backend_client_id(hybrid_search.client_id),
           hybrid_search.query_text,
           hybrid_search.query_embedding,
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

comment on function backend.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) is
  'Backend (service_role): hybrid search over client_id''s chunks (required, 22004), as public.hybrid_search. query_embedding is an extensions.vector.';

revoke all on function backend.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) to service_role;
