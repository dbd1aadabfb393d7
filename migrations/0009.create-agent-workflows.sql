-- depends: 0008.create-document-chunks-fts-index
--
-- 0009 create-agent-workflows
-- what: the agent-execution state machine (insert and update triggers on agent_executions),
-- the workflow RPCs start_agent_execution, record_agent_execution_progress,
-- complete_agent_execution, fail_agent_execution and cancel_agent_execution, the monthly token
-- quota (clients.settings -> 'monthly_token_limit'), cancelling by the starter or an admin
-- (update policy + column grant), and the monthly token usage views per client and per agent.
-- why: issue 4. The lifecycle pending -> running -> completed | failed | cancelled must hold for
-- every writer, the backend and the SQL console included, so it lives in triggers on the table;
-- the functions are thin, RLS-respecting entry points. See docs/agents.md.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

-- >>> sql/functions/private.enforce_monthly_token_quota.sql
/* why: a client may cap the LLM tokens its agents consume per calendar month (UTC) with
   `clients.settings -> 'monthly_token_limit'` (a non-negative integer; absent or null = no cap).
   The rule is deliberately simple and exact:
       used = sum(tokens_used) of the client's executions whose created_at falls in the current
              UTC calendar month (the month of now(), the transaction's time);
       a new execution is refused (RNE05) when used >= limit, so a limit of 0 forbids every run.
   Tokens are charged to the month in which their execution was created, whenever they are
   reported; the views public.client_monthly_token_usage / agent_monthly_token_usage bucket
   the same way, so what the quota refuses is what the usage views show. It is a gate on
   starting, not a hard cap on consumption: executions already running may take the month past
   the limit, and the next start is then refused.
   Concurrency: starting adds no tokens, so concurrent starts cannot jointly overrun the limit
   and need not wait for one another. The client row is locked FOR SHARE while checking, so the
   limit cannot change between the check and the commit of the new execution (an admin's
   update of settings waits, or the start waits for it and then reads the new limit), while
   concurrent starts share the lock. The sum is read with a fresh snapshot in READ COMMITTED,
   so tokens committed before the check count.
   A limit that is not a non-negative integer raises RNE06: a misconfigured quota is loud rather
   than silently unlimited.
   security definer: members cannot lock the client row (that needs UPDATE rights on clients)
   and the sum must cover every execution of the client. Because it bypasses RLS it re-checks
   the tenant: for an API request the client must be the caller's own client at role member,
   otherwise it does nothing at all (the insert policy, checked after BEFORE triggers, rejects
   that row), so it never locks or reveals another tenant's quota. */
create or replace function private.enforce_monthly_token_quota(client_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  request_role text := pg_catalog.current_setting('role', true);
  raw_limit jsonb;
  token_limit numeric;
  utc_month timestamp := pg_catalog.date_trunc('month', pg_catalog.timezone('UTC', pg_catalog.now()));
  -- month arithmetic on a timestamp without time zone, so the session TimeZone cannot shift it
  month_start timestamptz := pg_catalog.timezone('UTC', utc_month);
  month_end timestamptz := pg_catalog.timezone('UTC', utc_month + interval '1 month');
  used bigint;
begin
  if request_role in ('anon', 'authenticated')
     and private.current_client_id('member') is distinct from enforce_monthly_token_quota.client_id then
    return;
  end if;

  select c.settings -> 'monthly_token_limit' into raw_limit
    from public.clients as c
   where c.id = enforce_monthly_token_quota.client_id
     for share;
  if raw_limit is null or raw_limit = 'null'::jsonb then
    return;
  end if;
  if pg_catalog.jsonb_typeof(raw_limit) = 'number' then
    token_limit := raw_limit::numeric;
  end if;
  if token_limit is null or token_limit < 0 or token_limit <> pg_catalog.trunc(token_limit) then
    raise exception using
      errcode = 'RNE06',
      message = pg_catalog.format('clients.settings.monthly_token_limit must be a non-negative integer, not %s',
                                  raw_limit),
      hint = 'An admin of the client fixes settings; remove the key for no limit.';
  end if;

  select coalesce(sum(e.tokens_used), 0) into used
    from public.agent_executions as e
   where e.client_id = enforce_monthly_token_quota.client_id
     and e.created_at >= month_start
     and e.created_at < month_end;
  if used >= token_limit then
    raise exception using
      errcode = 'RNE05',
      message = pg_catalog.format('monthly token quota exceeded: %s of %s tokens used in %s',
                                  used, token_limit, pg_catalog.to_char(utc_month, 'YYYY-MM')),
      detail = pg_catalog.format('client %s, month starting %s UTC',
                                 enforce_monthly_token_quota.client_id, utc_month),
      hint = 'Wait for the next calendar month (UTC) or raise clients.settings.monthly_token_limit.';
  end if;
end;
$$;

comment on function private.enforce_monthly_token_quota(uuid) is
  'Raises RNE05 when the client''s tokens_used over executions created this UTC month reach clients.settings.monthly_token_limit (RNE06 if that setting is not a non-negative integer). Locks the client row FOR SHARE. Called by the insert trigger of agent_executions.';

revoke all on function private.enforce_monthly_token_quota(uuid) from public;
grant execute on function private.enforce_monthly_token_quota(uuid) to authenticated, service_role;
-- <<< sql/functions/private.enforce_monthly_token_quota.sql

-- >>> sql/functions/private.tg_agent_executions__guard_insert.sql
/* why: the state machine of public.agent_executions must hold for every writer (the RPC
   functions, PostgREST inserts by members, the backend, the SQL console), so its entry rules
   live in a trigger rather than in one function:
   - an execution is born `pending` (anything else is an illegal transition, RNE01);
   - started_at and completed_at belong to the database: values a writer supplies are ignored
     (overwritten with null here, then set by tg_agent_executions__enforce_transition);
   - only an `active` agent can be executed (RNE04). An agent the caller cannot see (another
     tenant's) is left to the composite foreign key and the insert policy, which run after this
     BEFORE trigger and reject the row without telling anything about it;
   - the client's monthly token quota (private.enforce_monthly_token_quota, RNE05).
   security invoker: it reads the agent with the writer's own rights; the quota helper is the
   only part that needs more. */
create or replace function private.tg_agent_executions__guard_insert()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  agent_status text;
begin
  if new.status is distinct from 'pending' then
    raise exception using
      errcode = 'RNE01',
      message = pg_catalog.format('an agent execution starts as pending, not %s', new.status),
      hint = 'Insert it pending; the worker moves it on.';
  end if;
  new.started_at := null;
  new.completed_at := null;

  select a.status into agent_status
    from public.agents as a
   where a.client_id = new.client_id
     and a.id = new.agent_id;
  if found and agent_status <> 'active' then
    raise exception using
      errcode = 'RNE04',
      message = pg_catalog.format('agent %s is %s: only active agents can be executed',
                                  new.agent_id, agent_status);
  end if;

  perform private.enforce_monthly_token_quota(new.client_id);
  return new;
end;
$$;

comment on function private.tg_agent_executions__guard_insert() is
  'Trigger (before insert on agent_executions): the row must be pending (RNE01), the agent active (RNE04) and the client under its monthly token quota (RNE05); started_at and completed_at are cleared (the database sets them).';

revoke all on function private.tg_agent_executions__guard_insert() from public;
-- <<< sql/functions/private.tg_agent_executions__guard_insert.sql

-- >>> sql/functions/private.tg_agent_executions__enforce_transition.sql
/* why: the lifecycle of an execution is
       pending -> running -> completed | failed | cancelled
       pending -> cancelled | failed
   and it must hold whoever writes (RPC functions, the backend, direct SQL), so it is enforced
   here, before every update:
   - a final row (completed, failed, cancelled) is frozen: any update raises RNE02, with one
     exception, clearing user_id and nothing else, which is what the foreign key's
     `on delete set null (user_id)` does when the user who started it is deleted;
   - a status change outside the arrows above raises RNE01 (an update that keeps the status,
     such as progress on a running execution, is not a transition);
   - tokens_used never decreases (RNE03): workers report running totals, so a lower value is a
     lost or reordered report, and quotas must not be undone by it;
   - started_at is set when the row becomes running and completed_at when it becomes final,
     both to now() (the transaction's time); values a writer supplies are ignored.
   A raised error aborts the statement, so nothing is written. security invoker: it only
   inspects and adjusts the row being written. */
create or replace function private.tg_agent_executions__enforce_transition()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if old.status in ('completed', 'failed', 'cancelled') then
    if new.user_id is null
       and pg_catalog.to_jsonb(new) - 'user_id'::text = pg_catalog.to_jsonb(old) - 'user_id'::text then
      return new;
    end if;
    raise exception using
      errcode = 'RNE02',
      message = pg_catalog.format('agent execution %s is %s: a finished execution cannot change',
                                  old.id, old.status);
  end if;

  if new.status is distinct from old.status
     and not (old.status = 'pending' and new.status in ('running', 'cancelled', 'failed'))
     and not (old.status = 'running' and new.status in ('completed', 'failed', 'cancelled')) then
    raise exception using
      errcode = 'RNE01',
      message = pg_catalog.format('agent execution %s cannot go from %s to %s',
                                  old.id, old.status, new.status),
      hint = 'Allowed: pending -> running | cancelled | failed; running -> completed | failed | cancelled.';
  end if;

  if new.tokens_used < old.tokens_used then
    raise exception using
      errcode = 'RNE03',
      message = pg_catalog.format('tokens_used of agent execution %s cannot decrease (%s -> %s)',
                                  old.id, old.tokens_used, new.tokens_used),
      hint = 'Report the running total of tokens, not an increment.';
  end if;

  new.started_at := case
    when old.status = 'pending' and new.status = 'running' then pg_catalog.now()
    else old.started_at
  end;
  new.completed_at := case
    when new.status in ('completed', 'failed', 'cancelled') then pg_catalog.now()
    else old.completed_at
  end;
  return new;
end;
$$;

comment on function private.tg_agent_executions__enforce_transition() is
  'Trigger (before update on agent_executions): allowed transitions only (RNE01), final rows frozen except clearing user_id (RNE02), tokens_used never decreasing (RNE03); sets started_at and completed_at.';

revoke all on function private.tg_agent_executions__enforce_transition() from public;
-- <<< sql/functions/private.tg_agent_executions__enforce_transition.sql

create trigger agent_executions_guard_insert
  before insert on public.agent_executions
  for each row execute function private.tg_agent_executions__guard_insert();

create trigger agent_executions_enforce_transition
  before update on public.agent_executions
  for each row execute function private.tg_agent_executions__enforce_transition();

comment on table public.agent_executions is
  'Runs of an agent: pending -> running -> completed | failed | cancelled (pending -> cancelled | failed), enforced by triggers for every writer. The tenant reads them; members start them as themselves (start_agent_execution); the starter or an admin may cancel; the backend records progress, output, errors and tokens. See docs/agents.md.';
comment on column public.agent_executions.started_at is
  'Set by the database when the execution becomes running; supplied values are ignored.';
comment on column public.agent_executions.completed_at is
  'Set by the database when the execution becomes completed, failed or cancelled; supplied values are ignored.';
comment on column public.agent_executions.tokens_used is
  'LLM tokens consumed by the run so far (a running total: non-negative, never decreasing). Counted in the UTC month of created_at for quotas.';

-- Users may cancel (status only; the update policy admits nothing but 'cancelled').
grant update (status) on table public.agent_executions to authenticated;

drop policy if exists agent_executions_select on public.agent_executions;
drop policy if exists agent_executions_insert on public.agent_executions;
-- >>> sql/policies/agent_executions.sql.j2 table=agent_executions
/* why: executions are visible to the whole tenant; members start them, always as themselves
   (user_id defaults to auth.uid() and is not writable by API users; the check repeats it).
   The only change a user may make is cancelling: the execution's starter (still at least a
   member) or an admin of the client may set status = 'cancelled' (the column grant is
   `update (status)`, and the check admits no other status); whether the execution may still be
   cancelled is the transition trigger's business. Progress, output, errors and tokens are
   written by the backend (service_role) through the workflow functions. */
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

create policy agent_executions_update on public.agent_executions
  for update to authenticated
  using (
    client_id = (select private.current_client_id('admin'))
    or (client_id = (select private.current_client_id('member')) and user_id = (select auth.uid()))
  )
  with check (
    status = 'cancelled'
    and (
      client_id = (select private.current_client_id('admin'))
      or (client_id = (select private.current_client_id('member')) and user_id = (select auth.uid()))
    )
  );
-- <<< sql/policies/agent_executions.sql.j2 table=agent_executions

-- >>> sql/functions/private.update_agent_execution.sql
/* why: the one statement behind the worker's RPCs (record_agent_execution_progress,
   complete_agent_execution, fail_agent_execution and the backend's cancel_agent_execution):
   move one execution of one client to `status`, replacing output / error / tokens_used when
   given (null keeps the stored value). Whether the move is legal, the frozen final states, the
   never-decreasing tokens and the timestamps are the update trigger's business
   (private.tg_agent_executions__enforce_transition), so every path obeys the same rules.
   An execution that is not in that client is PT404, for the backend as for anyone.
   security invoker: only service_role may execute it, and service_role may update the table. */
create or replace function private.update_agent_execution(
  client_id uuid,
  execution_id uuid,
  status text,
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

comment on function private.update_agent_execution(uuid, uuid, text, jsonb, text, bigint) is
  'Worker write of one execution of a client: sets status and, when not null, output, error and tokens_used (transition rules are enforced by the table''s trigger). PT404 if the execution is not in the client; 22023 on negative tokens.';

revoke all on function private.update_agent_execution(uuid, uuid, text, jsonb, text, bigint) from public;
grant execute on function private.update_agent_execution(uuid, uuid, text, jsonb, text, bigint) to service_role;
-- <<< sql/functions/private.update_agent_execution.sql

-- >>> sql/functions/public.start_agent_execution.sql
/* why: the RPC that starts a run (`supabase.rpc('start_agent_execution', {agent_id, input})`).
   It creates a pending execution of an agent of the caller's client, as the caller:
   - API users: their own active client (private.search_client_id; another client_id is 42501),
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
  target uuid := private.search_client_id(start_agent_execution.client_id);
  result public.agent_executions;
begin
  if current_user in ('anon', 'authenticated') and private.current_client_id('member') is null then
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
-- <<< sql/functions/public.start_agent_execution.sql

-- >>> sql/functions/public.record_agent_execution_progress.sql
/* why: the worker's heartbeat. The first call moves a pending execution to running (the
   database stamps started_at); later calls keep it running. `output` replaces the stored
   output (the worker sends the whole partial result, not a patch) and `tokens_used` is the
   running total so far (never lower than the stored one: RNE03); null leaves either unchanged.
   A finished execution cannot be touched (RNE02).
   Only the backend (service_role) may call it, naming the client (22004 without it); an
   execution outside that client is PT404. security invoker: the rules live in the table's
   trigger, which binds every writer. */
create or replace function public.record_agent_execution_progress(
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
    private.search_client_id(record_agent_execution_progress.client_id),
    record_agent_execution_progress.execution_id,
    'running',
    output => record_agent_execution_progress.output,
    tokens_used => record_agent_execution_progress.tokens_used
  )
$$;

comment on function public.record_agent_execution_progress(uuid, jsonb, bigint, uuid) is
  'Worker only (service_role, with client_id): mark an execution running (started_at set on the first call) and store its partial output and running token total. Errors: PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function public.record_agent_execution_progress(uuid, jsonb, bigint, uuid) from public, anon;
grant execute on function public.record_agent_execution_progress(uuid, jsonb, bigint, uuid) to service_role;
-- <<< sql/functions/public.record_agent_execution_progress.sql

-- >>> sql/functions/public.complete_agent_execution.sql
/* why: the worker finishes a running execution successfully: status completed, completed_at
   stamped by the database, final output and final token total (null keeps the stored value).
   Only a running execution can complete: a pending one is RNE01 (report progress first, which
   marks it running), a finished one RNE02.
   Only the backend (service_role) may call it, naming the client; security invoker, the table's
   trigger enforces the transition. */
create or replace function public.complete_agent_execution(
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
    private.search_client_id(complete_agent_execution.client_id),
    complete_agent_execution.execution_id,
    'completed',
    output => complete_agent_execution.output,
    tokens_used => complete_agent_execution.tokens_used
  )
$$;

comment on function public.complete_agent_execution(uuid, jsonb, bigint, uuid) is
  'Worker only (service_role, with client_id): running -> completed, with the final output and token total. Errors: PT404 unknown execution, RNE01 not running, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function public.complete_agent_execution(uuid, jsonb, bigint, uuid) from public, anon;
grant execute on function public.complete_agent_execution(uuid, jsonb, bigint, uuid) to service_role;
-- <<< sql/functions/public.complete_agent_execution.sql

-- >>> sql/functions/public.fail_agent_execution.sql
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
    private.search_client_id(fail_agent_execution.client_id),
    fail_agent_execution.execution_id,
    'failed',
    error => fail_agent_execution.error,
    tokens_used => fail_agent_execution.tokens_used
  );
end;
$$;

comment on function public.fail_agent_execution(uuid, text, bigint, uuid) is
  'Worker only (service_role, with client_id): pending or running -> failed, with the error text (required) and the final token total. Errors: 22004 no error text, PT404 unknown execution, RNE02 already finished, RNE03 tokens decreased.';

revoke all on function public.fail_agent_execution(uuid, text, bigint, uuid) from public, anon;
grant execute on function public.fail_agent_execution(uuid, text, bigint, uuid) to service_role;
-- <<< sql/functions/public.fail_agent_execution.sql

-- >>> sql/functions/public.cancel_agent_execution.sql
/* why: stop a run that is pending or running (status cancelled, completed_at stamped by the
   database; a finished one is RNE02). Who may cancel:
   - the user who started it (if still at least a member of its client) and admins of the
     client. That rule is the `agent_executions_update` policy together with the column grant
     `update (status)`, so a PostgREST PATCH setting status = cancelled obeys exactly the same
     rule, and its `with check (status = 'cancelled')` means users can do nothing else. An
     execution of the caller's client that the caller may not cancel is 42501; one that the
     caller cannot see (another client's) is PT404. Users cannot report tokens (42501 if they
     pass tokens_used): only the backend knows them;
   - the backend (service_role), naming the client, optionally with the final token total.
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
  target uuid := private.search_client_id(cancel_agent_execution.client_id);
  result public.agent_executions;
begin
  if current_user not in ('anon', 'authenticated') then
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
-- <<< sql/functions/public.cancel_agent_execution.sql

/* why: token accounting by UTC calendar month, bucketed exactly like the quota (the month of
   created_at, in UTC). security_invoker, so they read agent_executions with the caller's rights:
   users see their own client's months only (RLS), the backend sees every client and filters
   on client_id itself. Through PostgREST: GET /client_monthly_token_usage?month=eq.2026-11-01. */
create view public.agent_monthly_token_usage
  with (security_invoker = true)
as
select e.client_id,
       e.agent_id,
       pg_catalog.date_trunc('month', pg_catalog.timezone('UTC', e.created_at))::date as month,
       pg_catalog.count(*) as executions,
       pg_catalog.sum(e.tokens_used)::bigint as tokens_used
  from public.agent_executions as e
 group by e.client_id, e.agent_id, pg_catalog.date_trunc('month', pg_catalog.timezone('UTC', e.created_at))::date;

comment on view public.agent_monthly_token_usage is
  'Tokens used per client, agent and UTC calendar month (month = first day), counted by the month each execution was created in, as the monthly token quota counts them. Caller''s own client only (security_invoker, RLS).';

create view public.client_monthly_token_usage
  with (security_invoker = true)
as
select e.client_id,
       pg_catalog.date_trunc('month', pg_catalog.timezone('UTC', e.created_at))::date as month,
       pg_catalog.count(*) as executions,
       pg_catalog.sum(e.tokens_used)::bigint as tokens_used
  from public.agent_executions as e
 group by e.client_id, pg_catalog.date_trunc('month', pg_catalog.timezone('UTC', e.created_at))::date;

comment on view public.client_monthly_token_usage is
  'Tokens used per client and UTC calendar month (month = first day), counted by the month each execution was created in: the number clients.settings.monthly_token_limit is compared with. Caller''s own client only (security_invoker, RLS).';

revoke all on table public.agent_monthly_token_usage from public, anon, authenticated, service_role;
grant select on table public.agent_monthly_token_usage to authenticated, service_role;
revoke all on table public.client_monthly_token_usage from public, anon, authenticated, service_role;
grant select on table public.client_monthly_token_usage to authenticated, service_role;

notify pgrst, 'reload schema';
