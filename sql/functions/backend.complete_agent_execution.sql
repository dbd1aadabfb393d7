/* why: the worker finishes a running execution successfully: status completed, completed_at
   stamped by the database, final output and final token total (null keeps the stored value).
   Only a running execution can complete: a pending one is RNE01 (report progress first, which
   marks it running), a finished one RNE02. The transition rules live in the table's trigger
   (private.tg_agent_executions__enforce_transition); the write is
   private.update_agent_execution, like every worker write. security invoker. */
create or replace function backend.complete_agent_execution(
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
    private.backend_client_id(complete_agent_execution.client_id),
    complete_agent_execution.execution_id,
    'completed',
    output => complete_agent_execution.output,
    tokens_used => complete_agent_execution.tokens_used
  )
$$;

comment on function backend.complete_agent_execution(uuid, jsonb, bigint, uuid) is
  'Backend (service_role): running -> completed in client_id (required, 22004), with the final output and token total. Errors: PT404 unknown execution, RNE01 not running, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function backend.complete_agent_execution(uuid, jsonb, bigint, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.complete_agent_execution(uuid, jsonb, bigint, uuid) to service_role;
