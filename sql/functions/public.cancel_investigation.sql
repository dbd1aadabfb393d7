/* why: the RPC an owner calls to stop their investigation
   (`supabase.rpc('cancel_investigation', {investigation_id})`); the backend may call it too.
   Owners have no UPDATE privilege on status (a direct PATCH could otherwise pick any status), so
   the update happens in private.cancel_investigation, a security definer function that re-checks
   ownership. This wrapper is what PostgREST exposes.
   security invoker: it only delegates. */
create or replace function public.cancel_investigation(investigation_id uuid)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.cancel_investigation(cancel_investigation.investigation_id)
$$;

comment on function public.cancel_investigation(uuid) is
  'Cancel a pending or processing investigation: its owner (a signed-in user of an active client) or service_role. completed_at is set by the database; a worker''s next progress report fails with RNI03. Returns the row. Errors: PT404 unknown id or not the caller''s own, RNI01 already ended.';

revoke all on function public.cancel_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function public.cancel_investigation(uuid) to authenticated, service_role;
