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
   the tenant: unless the request is the backend (private.request_is_backend), whatever the
   request's role is called, the client must be the caller's own client at role member,
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
  raw_limit jsonb;
  token_limit numeric;
  utc_month timestamp := pg_catalog.date_trunc('month', pg_catalog.timezone('UTC', pg_catalog.now()));
  -- month arithmetic on a timestamp without time zone, so the session TimeZone cannot shift it
  month_start timestamptz := pg_catalog.timezone('UTC', utc_month);
  month_end timestamptz := pg_catalog.timezone('UTC', utc_month + interval '1 month');
  used bigint;
begin
  if not private.request_is_backend()
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
