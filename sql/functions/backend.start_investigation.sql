/* why: the worker claims a pending investigation: pending -> processing, and the database stamps
   started_at. Starting is a claim: a second start of the same row fails (RNI01) instead of
   letting two workers process it; private.update_investigation locks the row first, so
   concurrent calls are serialized and exactly one succeeds. security invoker. */
create or replace function backend.start_investigation(investigation_id uuid)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.update_investigation(start_investigation.investigation_id, 'processing')
$$;

comment on function backend.start_investigation(uuid) is
  'Worker (service_role): start a pending investigation (status processing; started_at set by the database). Returns the row. Errors: PT404 unknown id, RNI01 not pending.';

revoke all on function backend.start_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function backend.start_investigation(uuid) to service_role;
