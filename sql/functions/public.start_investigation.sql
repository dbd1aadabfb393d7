/* why: the worker claims a pending investigation: pending -> processing, and the database stamps
   started_at. Starting is a claim, so starting a row that is not pending fails (RNI01) instead
   of letting two workers process the same investigation. The row is locked (for update) before
   its status is read, so concurrent calls are serialized and exactly one succeeds.
   Granted to service_role only: users never start their own investigations.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.start_investigation(investigation_id uuid)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  current_status text;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = start_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', start_investigation.investigation_id);
  end if;
  if current_status <> 'pending' then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to processing',
                                  start_investigation.investigation_id, current_status),
      hint = 'Only a pending investigation can be started.';
  end if;
  update public.investigations as i
     set status = 'processing'
   where i.id = start_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.start_investigation(uuid) is
  'Worker (service_role): start a pending investigation (status processing; started_at set by the database). Returns the row. Errors: PT404 unknown id, RNI01 not pending.';

revoke all on function public.start_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function public.start_investigation(uuid) to service_role;
