/* why: the RPC a frontend calls to record chunk usage outside a search
   (`supabase.rpc('record_chunk_usage', {agent_id, chunk_ids})`), always in the caller's own
   active client (42501 without one); the backend calls backend.record_chunk_usage and names
   the client. private.record_chunk_usage does the atomic upsert. security invoker. */
create or replace function public.record_chunk_usage(
  agent_id uuid,
  chunk_ids uuid[],
  execution_id uuid default null
)
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.record_chunk_usage(
    private.require_client_id('viewer'),
    record_chunk_usage.agent_id,
    record_chunk_usage.chunk_ids,
    record_chunk_usage.execution_id
  )
$$;

comment on function public.record_chunk_usage(uuid, uuid[], uuid) is
  'Record that an agent of the caller''s client used these chunks (one usage each; repeated ids count repeatedly). Returns the number of chunks recorded. Errors: 42501 no active client, PT404 unknown agent/execution, 22023 more than 1000 ids.';

revoke all on function public.record_chunk_usage(uuid, uuid[], uuid) from public, anon, authenticated, service_role;
grant execute on function public.record_chunk_usage(uuid, uuid[], uuid) to authenticated;
