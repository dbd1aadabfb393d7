/* why: every retrieval function must search exactly one tenant, chosen safely:
   - an API user (role anon/authenticated) searches their own active client, always; passing
     another client_id is refused (42501), and a user with no active client is refused too;
   - any other caller (service_role, the backend's own login) has no tenant of its own and must
     name one (22004 if it does not); the functions then filter on it explicitly, so even the
     backend never receives a row of another tenant.
   security invoker: it only reads the caller's own profile through private.current_client_id. */
create or replace function private.search_client_id(requested_client_id uuid)
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  own uuid;
begin
  if current_user in ('anon', 'authenticated') then
    own := private.current_client_id('viewer');
    if own is null then
      raise exception using
        errcode = '42501',
        message = 'the caller belongs to no active client';
    end if;
    if requested_client_id is not null and requested_client_id <> own then
      raise exception using
        errcode = '42501',
        message = 'client_id must be the caller''s own client';
    end if;
    return own;
  end if;
  if requested_client_id is null then
    raise exception using
      errcode = '22004',
      message = pg_catalog.format('client_id is required when calling as %s', current_user),
      hint = 'The backend has no tenant of its own: pass the client to search.';
  end if;
  return requested_client_id;
end;
$$;

comment on function private.search_client_id(uuid) is
  'The one tenant a retrieval call may touch: the API user''s own active client (42501 otherwise), or the client the backend names (22004 if none).';

revoke all on function private.search_client_id(uuid) from public;
grant execute on function private.search_client_id(uuid) to authenticated, service_role;
