/* why: the RPC that starts a run (`supabase.rpc('start_agent_execution', {agent_id, input})`).
   It creates a pending execution of an agent of the caller's client, as the caller:
   - API users: their own active client (private.request_client_id; another client_id is 42501),
     and the member role at least (viewers run nothing: 42501). user_id is the caller.
   - the backend (service_role) must name client_id (22004 otherwise); user_id stays null (a
     system run, e.g. scheduled).
   - an agent that is not in that client is PT404 (another tenant's agent included, which
     reveals nothing); an agent that is not active is RNE04; a client over its monthly token
     quota is RNE05 (both from the insert trigger, so direct inserts obey them too).
   security invoker: the insert goes through the table's grants and insert policy like any
   PostgREST insert; the quota check inside the trigger is the only definer part. */
create or replace function public.start_agent_execution(
  agent_id uuid,
  input jsonb default '{}'::jsonb,
  client_id uuid default null
)
returns public.agent_executions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  target uuid := private.request_client_id(start_agent_execution.client_id);
  result public.agent_executions;
begin
  if not private.request_is_backend() and private.current_client_id('member') is null then
    raise exception using
      errcode = '42501',
      message = 'starting an agent execution requires the member role';
  end if;
  if start_agent_execution.agent_id is null then
    raise exception using errcode = '22004', message = 'agent_id is required';
  end if;
  if start_agent_execution.input is null then
    raise exception using errcode = '22004', message = 'input is required (use {} for none)';
  end if;
  if not exists (
    select from public.agents as a
     where a.client_id = target and a.id = start_agent_execution.agent_id
  ) then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('agent %s not found', start_agent_execution.agent_id);
  end if;

  insert into public.agent_executions as e (client_id, agent_id, input)
  values (target, start_agent_execution.agent_id, start_agent_execution.input)
  returning e.* into result;
  return result;
end;
$$;

comment on function public.start_agent_execution(uuid, jsonb, uuid) is
  'Start a run of an agent: creates a pending execution in the caller''s client, started by the caller (members and admins; the backend passes client_id). Errors: 42501 viewer or other client, PT404 unknown agent, RNE04 agent not active, RNE05 monthly token quota reached, RNE06 invalid quota setting.';

revoke all on function public.start_agent_execution(uuid, jsonb, uuid) from public, anon;
grant execute on function public.start_agent_execution(uuid, jsonb, uuid) to authenticated, service_role;
