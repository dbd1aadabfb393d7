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
