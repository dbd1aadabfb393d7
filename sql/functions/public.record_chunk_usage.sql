/* why: the RPC a worker or frontend calls to record chunk usage outside a search
   (`supabase.rpc('record_chunk_usage', {agent_id, chunk_ids})`). It resolves the one tenant the
   caller may write (own client for users, an explicit client for the backend) and delegates to
   private.record_chunk_usage, which does the atomic upsert. security invoker. */
create or replace function public.record_chunk_usage(
  agent_id uuid,
  chunk_ids uuid[],
  execution_id uuid default null,
  client_id uuid default null
)
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.record_chunk_usage(
    private.request_client_id(record_chunk_usage.client_id),
    record_chunk_usage.agent_id,
    record_chunk_usage.chunk_ids,
    record_chunk_usage.execution_id
  )
$$;

comment on function public.record_chunk_usage(uuid, uuid[], uuid, uuid) is
  'Record that an agent used these chunks (one usage each; repeated ids count repeatedly). Users record in their own client; the backend passes client_id. Returns the number of chunks recorded. Errors: 42501 other tenant, PT404 unknown agent/execution, 22023 more than 1000 ids.';

revoke all on function public.record_chunk_usage(uuid, uuid[], uuid, uuid) from public, anon;
grant execute on function public.record_chunk_usage(uuid, uuid[], uuid, uuid) to authenticated, service_role;
