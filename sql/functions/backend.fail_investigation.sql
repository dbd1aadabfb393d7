/* why: the worker records that an investigation failed, with the error text the owner will see:
   pending or processing -> failed (the trigger refuses it from a final state: RNI01);
   completed_at is set by the database. The error text is required (22004) and not blank
   (22023); longer than 10000 characters is refused by investigations_error_chk.
   security invoker. */
create or replace function backend.fail_investigation(investigation_id uuid, error text)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if fail_investigation.error is null then
    raise exception using errcode = '22004', message = 'error is required';
  end if;
  if pg_catalog.btrim(fail_investigation.error) = '' then
    raise exception using errcode = '22023', message = 'error must not be blank';
  end if;
  return private.update_investigation(fail_investigation.investigation_id, 'failed',
                                      error => fail_investigation.error);
end;
$$;

comment on function backend.fail_investigation(uuid, text) is
  'Worker (service_role): mark a pending or processing investigation failed with an error text (completed_at set by the database). Returns the row. Errors: PT404 unknown id, RNI01 already ended, 22004 error null, 22023 error blank, 23514 error longer than 10000 characters.';

revoke all on function backend.fail_investigation(uuid, text) from public, anon, authenticated, service_role;
grant execute on function backend.fail_investigation(uuid, text) to service_role;
