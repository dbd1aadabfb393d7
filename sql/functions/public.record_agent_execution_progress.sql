/* why: the worker's heartbeat. The first call moves a pending execution to running (the
   database stamps started_at); later calls keep it running. `output` replaces the stored
   output (the worker sends the whole partial result, not a patch) and `tokens_used` is the
   running total so far (never lower than the stored one: RNE03); null leaves either unchanged.
   A finished execution cannot be touched (RNE02).
   Only the backend (service_role) may call it, naming the client (22004 without it); an
   execution outside that client is PT404. security invoker: the rules live in the table's
   trigger, which binds every writer. */
create or replace function public.record_agent_execution_progress(
  execution_id uuid,
  output jsonb default null,
  tokens_used bigint default null,
  client_id uuid default null
)
returns public.agent_executions
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.update_agent_execution(
    private.request_client_id(record_agent_execution_progress.client_id),
    record_agent_execution_progress.execution_id,
    'running',
    output => record_agent_execution_progress.output,
    tokens_used => record_agent_execution_progress.tokens_used
  )
$$;

comment on function public.record_agent_execution_progress(uuid, jsonb, bigint, uuid) is
  'Worker only (service_role, with client_id): mark an execution running (started_at set on the first call) and store its partial output and running token total. Errors: PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function public.record_agent_execution_progress(uuid, jsonb, bigint, uuid) from public, anon, authenticated;
grant execute on function public.record_agent_execution_progress(uuid, jsonb, bigint, uuid) to service_role;
