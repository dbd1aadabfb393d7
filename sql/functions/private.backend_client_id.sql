/* why: the backend (service_role) has no tenant of its own, so every function in schema backend
   names the client it acts for; forgetting it must fail (22004), never fall back to "all
   clients". The functions then filter on that client explicitly, so even the backend never
   receives or changes a row of another tenant.
   security invoker: it reads only pg_roles (through private.request_is_backend). stable, since
   the role of the request is fixed within a statement. */
create or replace function private.backend_client_id(client_id uuid)
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  -- Granted to service_role only, and checked again by capability (private.request_is_backend):
  -- a role that merely inherits service_role's grants does not bypass RLS and is no backend.
  if not private.request_is_backend() then
    raise exception using
      errcode = '42501',
      message = 'only the backend (a role that bypasses RLS) may name the client it acts for';
  end if;
  if backend_client_id.client_id is null then
    raise exception using
      errcode = '22004',
      message = 'client_id is required',
      hint = 'The backend has no tenant of its own: pass the client it acts for.';
  end if;
  return backend_client_id.client_id;
end;
$$;

comment on function private.backend_client_id(uuid) is
  'The client a backend call names; 22004 if it names none.';

revoke all on function private.backend_client_id(uuid) from public, anon, authenticated, service_role;
grant execute on function private.backend_client_id(uuid) to service_role;
