/* why: the worker records that an execution failed, from pending (it could not even start) or
   running: status failed, `error` (required, non-blank: 22004) says why, completed_at is
   stamped by the database, tokens_used is the final total (null keeps the stored value). The
   transition rules live in the table's trigger
   (private.tg_agent_executions__enforce_transition); the write is
   private.update_agent_execution, like every worker write. security invoker. */
create or replace function backend.fail_agent_execution(
  execution_id uuid,
  error text,
  tokens_used bigint default null,
  client_id uuid default null
)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if fail_agent_execution.error is null or pg_catalog.btrim(fail_agent_execution.error) = '' then
    raise exception using errcode = '22004', message = 'error (why the execution failed) is required';
  end if;
  return private.update_agent_execution(
    private.backend_client_id(fail_agent_execution.client_id),
    fail_agent_execution.execution_id,
    'failed',
    error => fail_agent_execution.error,
    tokens_used => fail_agent_execution.tokens_used
  );
end;
$$;

comment on function backend.fail_agent_execution(uuid, text, bigint, uuid) is
  'Backend (service_role): pending or running -> failed in client_id (required, 22004), with the error text (required) and the final token total. Errors: 22004 no error text, PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function backend.fail_agent_execution(uuid, text, bigint, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.fail_agent_execution(uuid, text, bigint, uuid) to service_role;
