/* why: every RPC that acts on one tenant resolves that tenant here, with one fail-closed rule:
   - the backend (private.request_is_backend(): a role that bypasses RLS) has no tenant of its own
     and must name one (22004 if it does not); the functions then filter on it explicitly, so
     even the backend never receives or writes a row of another tenant;
   - every other role is a user: their own active client (private.current_client_id, which also
     refuses banned, soft-deleted and suspended users), always. Naming another client is 42501,
     and a user with no active client (no JWT, no profile, no client, suspended) is 42501 too.
   security invoker: it reads only the caller's own profile through private.current_client_id. */
create or replace function private.request_client_id(requested_client_id uuid)
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  own uuid;
begin
  if private.request_is_backend() then
    if requested_client_id is null then
      raise exception using
        errcode = '22004',
        message = pg_catalog.format('client_id is required when calling as %s',
                                    coalesce(nullif(pg_catalog.current_setting('role', true), 'none'),
                                             session_user)),
        hint = 'The backend has no tenant of its own: pass the client to act on.';
    end if;
    return requested_client_id;
  end if;
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
end;
$$;

comment on function private.request_client_id(uuid) is
  'The one tenant a request may act on: the client the backend names (a role that bypasses RLS; 22004 if none), or, for every other role, the user''s own active client (42501 if none or if another is named).';

revoke all on function private.request_client_id(uuid) from public;
grant execute on function private.request_client_id(uuid) to authenticated, service_role;
