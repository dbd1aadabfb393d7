-- depends: 0008.create-document-chunks-fts-index
--
-- 0011 guard-api-credentials-binding
-- what: a before-update trigger on public.api_credentials that refuses to change id,
-- service_name or credential_type without a new ciphertext (RNC01), and keeps updated_at when
-- only last_used_at changes.
-- why: renum_db.credentials binds every ciphertext to its row (id, client_id, service_name,
-- credential_type; see docs/credentials.md); a rename that keeps the old ciphertext would leave a
-- credential nobody can read, so it is refused when it happens rather than on the next read.
-- Reading a secret records last_used_at; that is usage, not a change, so updated_at stays.
-- No grant changes: encrypted_value stays backend-only.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

-- >>> sql/functions/private.tg_api_credentials__guard_update.sql
/* why: each ciphertext in api_credentials.encrypted_value is bound to its row: the encrypted
   envelope carries the row's id, client_id, service_name and credential_type, and
   renum_db.credentials refuses to hand out a secret whose envelope names another row (see
   docs/credentials.md). Changing one of those columns without writing a new ciphertext would
   therefore leave a credential nobody can read (and, for service_name, one the backend must not
   send to the renamed service), so this trigger rejects it at once with RNC01 instead of failing
   later on read. The backend renames by re-encrypting in the same update; admins, who may write
   service_name and credential_type through the API but never encrypted_value, get the error too.
   client_id changes are already refused by tg__forbid_client_id_change (RNT01).
   Second duty: an update that only records usage (last_used_at) keeps updated_at, so updated_at
   still means "metadata or secret last changed". The trigger is named so that it fires after
   api_credentials_set_updated_at (triggers of one event fire in name order).
   security invoker: it only compares the old and new row. */
create or replace function private.tg_api_credentials__guard_update()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if new.encrypted_value is not distinct from old.encrypted_value
     and (new.id, new.service_name, new.credential_type)
         is distinct from (old.id, old.service_name, old.credential_type) then
    raise exception using
      errcode = 'RNC01',
      message = pg_catalog.format(
        'api_credentials row %s: id, service_name and credential_type are bound to the ciphertext and cannot change without re-encrypting it',
        old.id),
      hint = 'Store the secret again under the new name (the backend re-encrypts it).';
  end if;
  if (pg_catalog.to_jsonb(new) - 'last_used_at' - 'updated_at')
     = (pg_catalog.to_jsonb(old) - 'last_used_at' - 'updated_at') then
    new.updated_at := old.updated_at;
  end if;
  return new;
end;
$$;

comment on function private.tg_api_credentials__guard_update() is
  'Trigger: rejects changing id, service_name or credential_type of an api_credentials row without a new ciphertext (SQLSTATE RNC01); keeps updated_at when only last_used_at changes.';

revoke all on function private.tg_api_credentials__guard_update() from public;
-- <<< sql/functions/private.tg_api_credentials__guard_update.sql

create trigger api_credentials_update_guard
  before update on public.api_credentials
  for each row execute function private.tg_api_credentials__guard_update();

notify pgrst, 'reload schema';
