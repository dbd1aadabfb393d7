/* why: the one insert behind public.start_agent_execution (a member, in their own client, as
   themselves) and backend.start_agent_execution (the client the backend names, no user). An
   agent that is not in that client is PT404 (another tenant's agent included, which reveals
   nothing); an inactive agent (RNE04) and the monthly token quota (RNE05) are the insert
   trigger's business, so direct inserts obey them too.
   security invoker: the insert goes through the caller's grants and insert policy like any
   PostgREST insert (user_id defaults to auth.uid()). */
create or replace function private.start_agent_execution(
  tenant uuid,
  agent_id uuid,
  input jsonb
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
  if start_agent_execution.agent_id is null then
    raise exception using errcode = '22004', message = 'agent_id is required';
  end if;
  if start_agent_execution.input is null then
    raise exception using errcode = '22004', message = 'input is required (use {} for none)';
  end if;
  if not exists (
    select from public.agents as a
     where a.client_id = start_agent_execution.tenant and a.id = start_agent_execution.agent_id
  ) then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('agent %s not found', start_agent_execution.agent_id);
  end if;

  insert into public.agent_executions as e (client_id, agent_id, input)
  values (start_agent_execution.tenant, start_agent_execution.agent_id, start_agent_execution.input)
  returning e.* into result;
  return result;
end;
$$;

comment on function private.start_agent_execution(uuid, uuid, jsonb) is
  'Creates a pending execution of an agent of one client (resolved by the public or backend entry). PT404 unknown agent; RNE04/RNE05 from the insert trigger.';

revoke all on function private.start_agent_execution(uuid, uuid, jsonb) from public, anon, authenticated, service_role;
grant execute on function private.start_agent_execution(uuid, uuid, jsonb) to authenticated, service_role;
