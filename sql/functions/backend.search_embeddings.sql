/* why: the backend's semantic search (a worker, the Python API): it holds a pgvector value
   (renum_db.vector.Vector, or '[...]'::extensions.vector) and acts for one client it names
   (22004 without it). Not in an exposed schema, so browsers never see it; callable over a
   direct connection as service_role, or over PostgREST with the service key if a project adds
   `backend` to its exposed schemas (Accept-Profile / supabase-js `.schema('backend')`).
   Same search, validation and usage recording as public.search_embeddings
   (private.search_embeddings). security invoker; volatile because it may record usage. language plpgsql (0022, issue 12), although it is one statement: PostgreSQL 16 re-plans the
   query of a non-inlined SQL function on every call; PL/pgSQL keeps the plan (measured 0.06 ms
   of a 0.5 ms search of a 100-row tenant, with private.current_client_id memoised). */
create or replace function backend.search_embeddings(
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  min_similarity double precision default null,
  client_id uuid default null,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null
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
set plan_cache_mode = 'force_generic_plan'
as $$
begin
  return query
  select *
    from private.search_embeddings(
           private.backend_client_id(search_embeddings.client_id),
           search_embeddings.query_embedding,
           search_embeddings.match_count,
           search_embeddings.collection_ids,
           search_embeddings.knowledge_base_ids,
           search_embeddings.metadata_filter,
           search_embeddings.min_similarity,
           search_embeddings.usage_agent_id,
           search_embeddings.usage_execution_id);
end;
$$;

comment on function backend.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) is
  'Backend (service_role): semantic search over the chunks of client_id (required, 22004), as public.search_embeddings. query_embedding is an extensions.vector.';

revoke all on function backend.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) to service_role;
