/* why: the backend's view of a client's most used documents: it names the client (22004
   without it). Same answer as public.most_used_documents for a user of that client.
   security invoker; stable and read-only. */
create or replace function backend.most_used_documents(
  match_count integer default 10,
  agent_id uuid default null,
  client_id uuid default null
)
returns table (
  document_id uuid,
  name text,
  collection_id uuid,
  usage_count bigint,
  chunks_used bigint,
  agents bigint,
  first_used_at timestamptz,
  last_used_at timestamptz
)
language sql
stable
security invoker
set search_path = ''
as $$
  select *
    from private.most_used_documents(private.backend_client_id(most_used_documents.client_id),
                                     most_used_documents.match_count,
                                     most_used_documents.agent_id)
$$;

comment on function backend.most_used_documents(integer, uuid, uuid) is
  'Backend (service_role): client_id''s most used documents (client_id required, 22004), as public.most_used_documents.';

revoke all on function backend.most_used_documents(integer, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.most_used_documents(integer, uuid, uuid) to service_role;
