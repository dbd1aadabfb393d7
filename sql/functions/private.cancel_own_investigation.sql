/* why: owners have no UPDATE privilege on investigations.status (a direct PATCH could otherwise
   pick any status), so cancelling is done for them here. security definer, therefore it
   re-checks what RLS would, for every caller, without asking who the caller is: the row must
   belong to the calling user (user_id = auth.uid()) in their active client, else PT404 exactly
   as for an unknown id, so it discloses nothing about other users' investigations. The backend
   cancels through backend.cancel_investigation instead. The write is
   private.update_investigation (row lock, then the workflow trigger), so a cancel racing with a
   completion either wins or fails with RNI01. */
create or replace function private.cancel_own_investigation(investigation_id uuid)
returns public.investigations
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform
    from public.investigations as i
   where i.id = cancel_own_investigation.investigation_id
     and i.user_id = auth.uid()
     and i.client_id = private.current_client_id('viewer');
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', cancel_own_investigation.investigation_id);
  end if;
  return private.update_investigation(cancel_own_investigation.investigation_id, 'cancelled');
end;
$$;

comment on function private.cancel_own_investigation(uuid) is
  'Cancels a pending or processing investigation of the calling user in their active client: PT404 when not found or not the caller''s, RNI01 when it already ended. Called through public.cancel_investigation.';

revoke all on function private.cancel_own_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function private.cancel_own_investigation(uuid) to authenticated;
