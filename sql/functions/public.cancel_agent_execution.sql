/* why: a user stops a run that is pending or running (status cancelled, completed_at stamped by
   the database; a finished one is RNE02). Who may cancel: the user who started it (if still at
   least a member of its client) and admins of the client. That rule is the
   `agent_executions_update` policy together with the column grant `update (status)`, so a
   PostgREST PATCH setting status = cancelled obeys exactly the same rule, and its
   `with check (status = 'cancelled')` means users can do nothing else. An execution of the
   caller's client that the caller may not cancel is 42501; one that the caller cannot see
   (another client's) is PT404. The backend cancels through backend.cancel_agent_execution
   (and may report the final tokens there).
   security invoker: grants, RLS and the transition trigger decide. */
create or replace function public.cancel_agent_execution(execution_id uuid)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  target uuid := private.require_client_id('viewer');
  result public.agent_executions;
begin
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

comment on function public.cancel_agent_execution(uuid) is
  'Cancel a pending or running execution of the caller''s client: its starter (member or admin) or an admin. Errors: 42501 not allowed to cancel it, PT404 unknown execution, RNE02 already finished.';

revoke all on function public.cancel_agent_execution(uuid) from public, anon, authenticated, service_role;
grant execute on function public.cancel_agent_execution(uuid) to authenticated;
