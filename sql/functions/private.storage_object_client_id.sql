/* why: a tenant's files are named `<client_id>/<upload uuid>/<file name>` in its bucket, and the
   storage policies must not bet on how a backend resolves odd names (`<own>/../<other>/x.pdf`,
   `<own>//x`, `/<own>/x`, `<OWN>/...`). This function accepts exactly the layout and returns
   the tenant of a well-formed name, null for anything else, so a policy comparing it with the
   caller's client matches nothing for a malformed name:
   - exactly three segments; the first two are uuids in canonical lowercase form (uuid::text),
     so there is one spelling per folder;
   - the file name: 1 to 255 characters, not `.` or `..`, no `/`, `\` or control character
     (U+0001-U+001F, U+007F), no leading or trailing space.
   renum_db.storage.check_object_name applies the same rule before uploading.
   security invoker, immutable: it looks at its argument only. */
create or replace function private.storage_object_client_id(name text)
returns uuid
language sql
immutable
security invoker
set search_path = ''
as $$
  select case
    when storage_object_client_id.name
         ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[^/\\\x01-\x1f\x7f]{1,255}$'
     and pg_catalog.split_part(storage_object_client_id.name, '/', 3) not in ('.', '..')
     and pg_catalog.split_part(storage_object_client_id.name, '/', 3) !~ '^ | $'
    then pg_catalog.split_part(storage_object_client_id.name, '/', 1)::uuid
  end
$$;

comment on function private.storage_object_client_id(text) is
  'The client id of a well-formed object name <client_id>/<uuid>/<file name> (lowercase uuids, file name of 1-255 characters, not . or .., no slash, backslash, control character, leading or trailing space); null for any other name.';

revoke all on function private.storage_object_client_id(text) from public;
grant execute on function private.storage_object_client_id(text) to authenticated, service_role;
