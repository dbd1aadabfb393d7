/* why: the worker records which chunks an agent used, in the client it names (22004 without
   it). private.record_chunk_usage does the atomic upsert. security invoker. */
create or replace function backend.record_chunk_usage(
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
    private.backend_client_id(record_chunk_usage.client_id),
    record_chunk_usage.agent_id,
    record_chunk_usage.chunk_ids,
    record_chunk_usage.execution_id
  )
$$;

comment on function backend.record_chunk_usage(uuid, uuid[], uuid, uuid) is
  'Backend (service_role): record that an agent of client_id (required, 22004) used these chunks. Returns the number recorded. Errors: PT404 unknown agent/execution, 22023 more than 1000 ids.';

revoke all on function backend.record_chunk_usage(uuid, uuid[], uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.record_chunk_usage(uuid, uuid[], uuid, uuid) to service_role;
