/* why: seed 000's document_usage_stats: which agent used which chunk, how often, first and
   last. One row per (client, chunk, agent), incremented atomically with insert ... on conflict
   do update, so concurrent writers never lose an increment. Rows are upserted in chunk-id order,
   so two transactions recording overlapping chunks take their row locks in the same order and
   cannot deadlock. Chunk ids that are unknown or of another tenant are skipped; the agent (and
   execution, if given) must belong to the client, else PT404.
   security definer: API users read usage rows but may not write them directly (no grant), so
   only this function writes them. Because it bypasses RLS it re-checks the tenant itself: unless
   the request is the backend (private.request_is_backend: a role that bypasses RLS), the client
   must be the caller's own active client, whatever the request's role is called.
   Called through public.record_chunk_usage and the search functions. */
create or replace function private.record_chunk_usage(
  client_id uuid,
  agent_id uuid,
  chunk_ids uuid[],
  execution_id uuid default null
)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  recorded integer;
begin
  if record_chunk_usage.client_id is null then
    raise exception using errcode = '22004', message = 'client_id is required';
  end if;
  if not private.request_is_backend()
     and private.current_client_id('viewer') is distinct from record_chunk_usage.client_id then
    raise exception using
      errcode = '42501',
      message = 'usage can only be recorded in the caller''s own client';
  end if;
  if record_chunk_usage.agent_id is null then
    raise exception using errcode = '22004', message = 'agent_id is required';
  end if;
  if pg_catalog.cardinality(record_chunk_usage.chunk_ids) > 1000 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('at most 1000 chunk ids per call, got %s',
                                  pg_catalog.cardinality(record_chunk_usage.chunk_ids));
  end if;
  if not exists (
    select from public.agents as a
     where a.client_id = record_chunk_usage.client_id and a.id = record_chunk_usage.agent_id
  ) then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('agent %s not found in this client', record_chunk_usage.agent_id);
  end if;
  if record_chunk_usage.execution_id is not null and not exists (
    select from public.agent_executions as e
     where e.client_id = record_chunk_usage.client_id
       and e.id = record_chunk_usage.execution_id
       and e.agent_id = record_chunk_usage.agent_id
  ) then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('execution %s of agent %s not found in this client',
                                  record_chunk_usage.execution_id, record_chunk_usage.agent_id);
  end if;
  if coalesce(pg_catalog.cardinality(record_chunk_usage.chunk_ids), 0) = 0 then
    return 0;
  end if;

  insert into public.document_usage_stats as s
    (client_id, document_id, chunk_id, agent_id, last_execution_id,
     usage_count, first_used_at, last_used_at)
  select c.client_id, c.document_id, c.id, record_chunk_usage.agent_id,
         record_chunk_usage.execution_id, u.uses, pg_catalog.now(), pg_catalog.now()
    from (select x.id, pg_catalog.count(*) as uses
            from pg_catalog.unnest(record_chunk_usage.chunk_ids) as x (id)
           where x.id is not null
           group by x.id) as u
    join public.document_chunks as c
      on c.client_id = record_chunk_usage.client_id and c.id = u.id
   order by c.id
  on conflict on constraint document_usage_stats_chunk_agent_key do update
     set usage_count = s.usage_count + excluded.usage_count,
         last_used_at = greatest(s.last_used_at, excluded.last_used_at),
         last_execution_id = coalesce(excluded.last_execution_id, s.last_execution_id);
  get diagnostics recorded = row_count;
  return recorded;
end;
$$;

comment on function private.record_chunk_usage(uuid, uuid, uuid[], uuid) is
  'Records that an agent (and optionally one of its executions) used these chunks of a client: upserts one document_usage_stats row per chunk, incrementing usage_count atomically. Returns the number of chunks recorded.';

revoke all on function private.record_chunk_usage(uuid, uuid, uuid[], uuid) from public;
grant execute on function private.record_chunk_usage(uuid, uuid, uuid[], uuid) to authenticated, service_role;
