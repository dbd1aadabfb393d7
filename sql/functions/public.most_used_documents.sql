/* why: the caller's most used documents (`supabase.rpc('most_used_documents', {match_count})`),
   in the caller's own active client (42501 without one); the backend calls
   backend.most_used_documents and names the client. security invoker; stable and read-only, so
   PostgREST may serve it over GET. */
create or replace function public.most_used_documents(
  match_count integer default 10,
  agent_id uuid default null
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
    from private.most_used_documents(private.require_client_id('viewer'),
                                     most_used_documents.match_count,
                                     most_used_documents.agent_id)
$$;

comment on function public.most_used_documents(integer, uuid) is
  'The caller''s most used documents (by total chunk uses), optionally for one agent: usage_count, distinct chunks and agents, first and last use. match_count 1..1000 (default 10). Errors: 42501 no active client, 22023 match_count out of range.';

revoke all on function public.most_used_documents(integer, uuid) from public, anon, authenticated, service_role;
grant execute on function public.most_used_documents(integer, uuid) to authenticated;
