/* why: the backend cancels a pending or running execution of the client it names, optionally
   with the final token total (null keeps the stored value); a finished one is RNE02. The
   transition rules live in the table's trigger
   (private.tg_agent_executions__enforce_transition); the write is
   private.update_agent_execution, like every worker write. security invoker. */
create or replace function backend.cancel_agent_execution(
  execution_id uuid,
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
    private.backend_client_id(cancel_agent_execution.client_id),
    cancel_agent_execution.execution_id,
    'cancelled',
    tokens_used => cancel_agent_execution.tokens_used
  )
$$;

comment on function backend.cancel_agent_execution(uuid, bigint, uuid) is
  'Backend (service_role): pending or running -> cancelled in client_id (required, 22004), optionally with the final token total. Errors: PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function backend.cancel_agent_execution(uuid, bigint, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.cancel_agent_execution(uuid, bigint, uuid) to service_role;
