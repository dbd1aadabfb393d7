/* why: the worker records that an investigation failed, with the error text the owner will see:
   pending or processing -> failed; completed_at is set by the database. Failing an investigation
   that already ended fails (RNI01), checked under a row lock. The error text is required (22004)
   and not blank (22023); longer than 10000 characters is refused by investigations_error_chk.
   Granted to service_role only.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.fail_investigation(investigation_id uuid, error text)
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
  if fail_investigation.error is null then
    raise exception using errcode = '22004', message = 'error is required';
  end if;
  if pg_catalog.btrim(fail_investigation.error) = '' then
    raise exception using errcode = '22023', message = 'error must not be blank';
  end if;
  select i.status into current_status
    from public.investigations as i
   where i.id = fail_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', fail_investigation.investigation_id);
  end if;
  if current_status not in ('pending', 'processing') then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to failed',
                                  fail_investigation.investigation_id, current_status),
      hint = 'Only a pending or processing investigation can fail.';
  end if;
  update public.investigations as i
     set status = 'failed',
         error = fail_investigation.error
   where i.id = fail_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.fail_investigation(uuid, text) is
  'Worker (service_role): mark a pending or processing investigation failed with an error text (completed_at set by the database). Returns the row. Errors: PT404 unknown id, RNI01 already ended, 22004 error null, 22023 error blank, 23514 error longer than 10000 characters.';

revoke all on function public.fail_investigation(uuid, text) from public, anon, authenticated, service_role;
grant execute on function public.fail_investigation(uuid, text) to service_role;
