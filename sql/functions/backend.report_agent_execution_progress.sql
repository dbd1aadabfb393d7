/* why: the worker's heartbeat. The first call moves a pending execution to running (the
   database stamps started_at); later calls keep it running. `output` replaces the stored
   output (the worker sends the whole partial result, not a patch) and `tokens_used` is the
   running total so far (never lower than the stored one: RNE03); null leaves either unchanged.
   A finished execution cannot be touched (RNE02). Same verb as
   backend.report_investigation_progress. The transition rules live in the table's trigger
   (private.tg_agent_executions__enforce_transition); the write is
   private.update_agent_execution, like every worker write. security invoker. */
create or replace function backend.report_agent_execution_progress(
  execution_id uuid,
  output jsonb default null,
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
    private.backend_client_id(report_agent_execution_progress.client_id),
    report_agent_execution_progress.execution_id,
    'running',
    output => report_agent_execution_progress.output,
    tokens_used => report_agent_execution_progress.tokens_used
  )
$$;

comment on function backend.report_agent_execution_progress(uuid, jsonb, bigint, uuid) is
  'Backend (service_role): mark an execution of client_id (required, 22004) running (started_at set on the first call) and store its partial output and running token total. Errors: PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function backend.report_agent_execution_progress(uuid, jsonb, bigint, uuid) from public, anon, authenticated, service_role;
grant execute on function backend.report_agent_execution_progress(uuid, jsonb, bigint, uuid) to service_role;
