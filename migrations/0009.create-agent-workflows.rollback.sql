-- 0009 rollback: drop the agent workflow (views, RPCs, triggers, quota helper), put back the
-- 0003 policies, privileges and comments of agent_executions.
set local lock_timeout = '10s';
set local statement_timeout = '5min';

drop view if exists public.client_monthly_token_usage;
drop view if exists public.agent_monthly_token_usage;

drop function if exists public.cancel_agent_execution(uuid, bigint, uuid);
drop function if exists public.fail_agent_execution(uuid, text, bigint, uuid);
drop function if exists public.complete_agent_execution(uuid, jsonb, bigint, uuid);
drop function if exists public.record_agent_execution_progress(uuid, jsonb, bigint, uuid);
drop function if exists public.start_agent_execution(uuid, jsonb, uuid);
drop function if exists private.update_agent_execution(uuid, uuid, text, jsonb, text, bigint);

drop trigger if exists agent_executions_enforce_transition on public.agent_executions;
drop trigger if exists agent_executions_guard_insert on public.agent_executions;
drop function if exists private.tg_agent_executions__enforce_transition();
drop function if exists private.tg_agent_executions__guard_insert();
drop function if exists private.enforce_monthly_token_quota(uuid);

revoke update (status) on table public.agent_executions from authenticated;

drop policy if exists agent_executions_update on public.agent_executions;
drop policy if exists agent_executions_insert on public.agent_executions;
drop policy if exists agent_executions_select on public.agent_executions;
-- the 0003 version, as 0003 embedded it
-- >>> sql/policies/agent_executions.sql.j2 table=agent_executions
/* why: executions are visible to the whole tenant; members start them, always as themselves
   (user_id defaults to auth.uid() and is not writable by API users; the check repeats it).
   Progress, output and status are written by the backend (service_role) and, later, by
   workflow functions, never directly by a browser. */
alter table public.agent_executions enable row level security;
alter table public.agent_executions force row level security;

create policy agent_executions_select on public.agent_executions
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));

create policy agent_executions_insert on public.agent_executions
  for insert to authenticated
  with check (
    client_id = (select private.current_client_id('member'))
    and user_id = (select auth.uid())
  );
-- <<< sql/policies/agent_executions.sql.j2 table=agent_executions

comment on table public.agent_executions is
  'Runs of an agent. The tenant reads them; members start them as themselves (user_id = auth.uid()); status, output and tokens are written by the backend.';
comment on column public.agent_executions.started_at is null;
comment on column public.agent_executions.completed_at is null;
comment on column public.agent_executions.tokens_used is 'LLM tokens consumed by the run (non-negative).';

notify pgrst, 'reload schema';
