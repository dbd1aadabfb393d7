/* why: the tenant of a user-facing RPC (schema public) is always the caller's own, resolved
   from the JWT's user (auth.uid()) through public.users: there is no client_id parameter to
   trust or to check, so whatever the database role of the request (authenticated or a custom
   role inheriting it), a caller without an active client, or below min_role, gets 42501 and
   nothing else. The backend's entry points (schema backend) name their client instead
   (private.backend_client_id).
   security invoker: it only reads the caller's own profile through private.current_client_id. */
create or replace function private.require_client_id(min_role text default 'viewer')
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  own uuid := private.current_client_id(require_client_id.min_role);
begin
  if own is null then
    if private.current_client_id('viewer') is null then
      raise exception using
        errcode = '42501',
        message = 'the caller belongs to no active client';
    end if;
    raise exception using
      errcode = '42501',
      message = pg_catalog.format('this call requires the %s role', require_client_id.min_role);
  end if;
  return own;
end;
$$;

comment on function private.require_client_id(text) is
  'The calling user''s active client if their role is at least min_role; 42501 otherwise. The tenant of every RPC in schema public.';

revoke all on function private.require_client_id(text) from public, anon, authenticated, service_role;
grant execute on function private.require_client_id(text) to authenticated;
