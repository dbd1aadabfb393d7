/* why: the worker records that an execution failed, from pending (it could not even start) or
   running: status failed, `error` (required, non-blank) says why, completed_at is stamped by the
   database, tokens_used is the final total (null keeps the stored value).
   Only the backend (service_role) may call it, naming the client; security invoker, the table's
   trigger enforces the transition. */
create or replace function public.fail_agent_execution(
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
    private.request_client_id(fail_agent_execution.client_id),
    fail_agent_execution.execution_id,
    'failed',
    error => fail_agent_execution.error,
    tokens_used => fail_agent_execution.tokens_used
  );
end;
$$;

comment on function public.fail_agent_execution(uuid, text, bigint, uuid) is
  'Worker only (service_role, with client_id): pending or running -> failed, with the error text (required) and the final token total. Errors: 22004 no error text, PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function public.fail_agent_execution(uuid, text, bigint, uuid) from public, anon, authenticated;
grant execute on function public.fail_agent_execution(uuid, text, bigint, uuid) to service_role;
