/* why: the RPC that starts a run (`supabase.rpc('start_agent_execution', {agent_id, input})`):
   a pending execution of an agent of the caller's own active client, started by the caller,
   who must be at least a member (viewers run nothing: 42501). No client_id parameter: the
   backend starts system runs through backend.start_agent_execution.
   security invoker: the insert obeys the table's grants, insert policy and triggers. */
create or replace function public.start_agent_execution(
  agent_id uuid,
  input jsonb default '{}'::jsonb
)
returns public.agent_executions
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.start_agent_execution(
    private.require_client_id('member'),
    start_agent_execution.agent_id,
    start_agent_execution.input
  )
$$;

comment on function public.start_agent_execution(uuid, jsonb) is
  'Start a run of an agent of the caller''s client: a pending execution started by the caller (members and admins). Errors: 42501 viewer or no active client, PT404 unknown agent, RNE04 agent not active, RNE05 monthly token quota reached, RNE06 invalid quota setting.';

revoke all on function public.start_agent_execution(uuid, jsonb) from public, anon, authenticated, service_role;
grant execute on function public.start_agent_execution(uuid, jsonb) to authenticated;
