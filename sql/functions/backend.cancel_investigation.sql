/* why: the backend cancels any investigation (an operator, a timeout): pending or processing ->
   cancelled, completed_at set by the database; RNI01 if it already ended. security invoker. */
create or replace function backend.cancel_investigation(investigation_id uuid)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.update_investigation(cancel_investigation.investigation_id, 'cancelled')
$$;

comment on function backend.cancel_investigation(uuid) is
  'Backend (service_role): cancel a pending or processing investigation. Returns the row. Errors: PT404 unknown id, RNI01 already ended.';

revoke all on function backend.cancel_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function backend.cancel_investigation(uuid) to service_role;
