/* why: the one statement behind the backend's execution RPCs (backend.report_agent_execution_
   progress, complete_agent_execution, fail_agent_execution, cancel_agent_execution):
   move one execution of one client to `status`, replacing output / error / tokens_used when
   given (null keeps the stored value). Whether the move is legal, the frozen final states, the
   never-decreasing tokens and the timestamps are the update trigger's business
   (private.tg_agent_executions__enforce_transition), so every path obeys the same rules.
   An execution that is not in that client is PT404, for the backend as for anyone.
   security invoker: only service_role may execute it, and service_role may update the table. */
create or replace function private.update_agent_execution(
  client_id uuid,
  execution_id uuid,
  status public.agent_execution_status,
  output jsonb default null,
  error text default null,
  tokens_used bigint default null
)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  result public.agent_executions;
begin
  if update_agent_execution.execution_id is null then
    raise exception using errcode = '22004', message = 'execution_id is required';
  end if;
  if update_agent_execution.tokens_used < 0 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('tokens_used must be non-negative, got %s',
                                  update_agent_execution.tokens_used);
  end if;

  update public.agent_executions as e
     set status = update_agent_execution.status,
         output = coalesce(update_agent_execution.output, e.output),
         error = coalesce(update_agent_execution.error, e.error),
         tokens_used = coalesce(update_agent_execution.tokens_used, e.tokens_used)
   where e.client_id = update_agent_execution.client_id
     and e.id = update_agent_execution.execution_id
  returning e.* into result;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('agent execution %s not found in client %s',
                                  update_agent_execution.execution_id,
                                  update_agent_execution.client_id);
  end if;
  return result;
end;
$$;

comment on function private.update_agent_execution(uuid, uuid, public.agent_execution_status, jsonb, text, bigint) is
  'Worker write of one execution of a client: sets status and, when not null, output, error and tokens_used (transition rules are enforced by the table''s trigger). PT404 if the execution is not in the client; 22023 on negative tokens.';

revoke all on function private.update_agent_execution(uuid, uuid, public.agent_execution_status, jsonb, text, bigint) from public, anon, authenticated, service_role;
grant execute on function private.update_agent_execution(uuid, uuid, public.agent_execution_status, jsonb, text, bigint) to service_role;
