/* why: `updated_at` must mean "last changed", whoever changed the row and however (PostgREST,
   backend, SQL console), so the database keeps it rather than application code. The function is
   shared by every table that has the column (tg__ prefix); security invoker, since it only touches
   the row being written. Trigger functions need no EXECUTE grant to fire, so none is given. */
create or replace function private.tg__set_updated_at()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  new.updated_at := pg_catalog.now();
  return new;
end;
$$;

comment on function private.tg__set_updated_at() is
  'Trigger: sets updated_at to now() on every update.';

revoke all on function private.tg__set_updated_at() from public;
