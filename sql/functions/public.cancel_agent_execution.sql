/* why: stop a run that is pending or running (status cancelled, completed_at stamped by the
   database; a finished one is RNE02). Who may cancel:
   - the user who started it (if still at least a member of its client) and admins of the
     client. That rule is the `agent_executions_update` policy together with the column grant
     `update (status)`, so a PostgREST PATCH setting status = cancelled obeys exactly the same
     rule, and its `with check (status = 'cancelled')` means users can do nothing else. An
     execution of the caller's client that the caller may not cancel is 42501; one that the
     caller cannot see (another client's) is PT404. Users cannot report tokens (42501 if they
     pass tokens_used): only the backend knows them;
   - the backend (private.request_is_backend: service_role or another role that bypasses RLS),
     naming the client, optionally with the final token total. Every other role is a user.
   security invoker: users go through grants, RLS and the transition trigger; the backend
   through private.update_agent_execution and the same trigger. */
create or replace function public.cancel_agent_execution(
  execution_id uuid,
  tokens_used bigint default null,
  client_id uuid default null
)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  target uuid := private.request_client_id(cancel_agent_execution.client_id);
  result public.agent_executions;
begin
  if private.request_is_backend() then
    return private.update_agent_execution(
      target, cancel_agent_execution.execution_id, 'cancelled',
      tokens_used => cancel_agent_execution.tokens_used
    );
  end if;

  if cancel_agent_execution.tokens_used is not null then
    raise exception using
      errcode = '42501',
      message = 'only the backend reports tokens_used';
  end if;
  if cancel_agent_execution.execution_id is null then
    raise exception using errcode = '22004', message = 'execution_id is required';
  end if;
  if not exists (
    select from public.agent_executions as e
     where e.client_id = target and e.id = cancel_agent_execution.execution_id
  ) then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('agent execution %s not found', cancel_agent_execution.execution_id);
  end if;

  update public.agent_executions as e
     set status = 'cancelled'
   where e.client_id = target
     and e.id = cancel_agent_execution.execution_id
  returning e.* into result;
  if not found then
    raise exception using
      errcode = '42501',
      message = 'only the user who started an execution (a member) or an admin of its client may cancel it';
  end if;
  return result;
end;
$$;

comment on function public.cancel_agent_execution(uuid, bigint, uuid) is
  'Cancel a pending or running execution: its starter (member or admin) or an admin of the client; the backend passes client_id and may pass the final tokens_used. Errors: 42501 not allowed to cancel it or tokens_used from a user, PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function public.cancel_agent_execution(uuid, bigint, uuid) from public, anon;
grant execute on function public.cancel_agent_execution(uuid, bigint, uuid) to authenticated, service_role;
