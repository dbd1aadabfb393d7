/* why: a row belongs to one tenant for life. Column privileges already stop API users from
   writing client_id on update, and composite foreign keys stop a row from pointing into another
   tenant; this trigger closes the last gap (a backend or console update moving a leaf row) and
   keeps the distribution column immutable, which Citus requires if tenants are ever sharded.
   security invoker: it only inspects the row being written. */
create or replace function private.tg__forbid_client_id_change()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if new.client_id is distinct from old.client_id then
    raise exception using
      errcode = 'RNT01',
      message = pg_catalog.format('%s.client_id cannot change (row %s)', tg_table_name, old.id),
      hint = 'Rows never move between tenants; copy the row into the other tenant instead.';
  end if;
  return new;
end;
$$;

comment on function private.tg__forbid_client_id_change() is
  'Trigger: rejects any update that changes client_id (SQLSTATE RNT01).';

revoke all on function private.tg__forbid_client_id_change() from public;
