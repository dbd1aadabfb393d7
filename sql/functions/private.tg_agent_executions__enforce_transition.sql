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
