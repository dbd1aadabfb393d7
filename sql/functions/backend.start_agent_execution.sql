/* why: the backend starts a system run (scheduled, API-triggered) in the client it names
   (22004 without it); user_id stays null. Same checks as the user's entry
   (private.start_agent_execution). security invoker. */
create or replace function backend.start_agent_execution(
  agent_id uuid,
  input jsonb default '{}'::jsonb,
  client_id uuid default null
)
returns public.agent_executions
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.start_agent_execution(
    private.backend_client_id(start_agent_execution.client_id),
    start_agent_execution.agent_id,
    start_agent_execution.input
  )
$$;

comment on function backend.start_agent_execution(uuid, jsonb, uuid) is
  'Backend (service_role): start a run of an agent of client_id (required, 22004), with no user. Errors: PT404 unknown agent, RNE04 agent not active, RNE05 quota reached, RNE06 invalid quota setting.';

revoke all on function backend.start_agent_execution(uuid, jsonb, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.start_agent_execution(uuid, jsonb, uuid) to service_role;
