/* why: the RPC an owner calls to stop their investigation
   (`supabase.rpc('cancel_investigation', {investigation_id})`). The update happens in
   private.cancel_own_investigation, a security definer that re-checks ownership, because owners
   hold no UPDATE privilege on status. The backend calls backend.cancel_investigation.
   security invoker: it only delegates. */
create or replace function public.cancel_investigation(investigation_id uuid)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.cancel_own_investigation(cancel_investigation.investigation_id)
$$;

comment on function public.cancel_investigation(uuid) is
  'Cancel your own pending or processing investigation. completed_at is set by the database; the worker''s next progress report fails with RNI03. Returns the row. Errors: PT404 unknown id or not the caller''s own, RNI01 already ended.';

revoke all on function public.cancel_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function public.cancel_investigation(uuid) to authenticated;
