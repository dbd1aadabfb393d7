/* why: the one test of "is this request the backend?", decided by capability, never by name.
   The request's role is the role PostgREST (or act_as) switched to, `current_setting('role')`, or
   the login role when none was set (a direct backend connection). That GUC keeps its value
   inside security definer functions, where current_user is the function's owner, so the answer
   is the same wherever in a call chain it is asked.
   The backend is a role that may already read and write every tenant's rows itself: BYPASSRLS
   (service_role, hosted Supabase's postgres) or superuser. Letting such a role name the client a
   function acts on grants it nothing it does not have. Every other role, whatever its name (anon,
   authenticated, a custom PostgREST role inheriting authenticated, a role that merely inherits
   service_role's grants: BYPASSRLS is an attribute and is not inherited), is a user and is
   resolved through auth.uid() and public.users; a role this function does not find is a user too.
   security invoker: pg_roles is readable by everyone. stable: one answer per statement.
   language plpgsql (0033): its query is planned once per session. As a SQL function with a SET
   clause it could not be inlined, and PostgreSQL before 18 parsed, rewrote (pg_roles is a view)
   and planned its body on every call of every statement that asked: measured 0.06 ms warm and
   0.2 ms with cold CPU caches per call, a third of a 100-row tenant's backend search. */
create or replace function private.request_is_backend()
returns boolean
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  return coalesce(
    (select r.rolbypassrls or r.rolsuper
       from pg_catalog.pg_roles as r
      where r.rolname = coalesce(nullif(pg_catalog.current_setting('role', true), 'none'),
                                 session_user)),
    false);
end;
$$;

comment on function private.request_is_backend() is
  'True when the request runs as a role that bypasses RLS (BYPASSRLS or superuser: service_role, the backend''s own login); false for every other role, known or not. The one rule behind every "user or backend" decision.';

revoke all on function private.request_is_backend() from public;
grant execute on function private.request_is_backend() to authenticated, service_role;
