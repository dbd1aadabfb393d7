/* why: auth.uid() says who signed the JWT, not whether that user may still act. Where a policy
   needs the caller's own identity without a tenant (a user reads their own profile, with or
   without a client), it uses this instead: auth.uid() if the auth user is neither banned
   (banned_until in the future) nor soft-deleted (deleted_at) and the profile is not suspended;
   null otherwise, so a revoked user loses even their own profile at once.
   security definer: it reads auth.users and public.users for the caller's own id only.
   Stable; policies wrap it as `(select ...)` so it runs once per statement (two key probes). */
create or replace function private.current_user_id()
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select u.id
  from public.users as u
  join auth.users as a on a.id = u.id
  where u.id = auth.uid()
    and u.status = 'active'
    and a.deleted_at is null
    and (a.banned_until is null or a.banned_until <= pg_catalog.now())
$$;

comment on function private.current_user_id() is
  'auth.uid() when that user has a profile and is neither banned, soft-deleted nor suspended; null otherwise.';

revoke all on function private.current_user_id() from public;
grant execute on function private.current_user_id() to authenticated, service_role;
