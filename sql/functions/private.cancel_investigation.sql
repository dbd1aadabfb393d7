/* why: cancelling writes status, which owners may not write directly (no column privilege), so
   this function does it for them. security definer, therefore it re-checks what RLS would: unless
   the request is the backend (private.request_is_backend: a role that bypasses RLS), whatever
   the request's role is called, the row must belong to the caller (user_id = auth.uid()) in the
   caller's active client, else it answers PT404 exactly as for an unknown id, so it discloses
   nothing about other users' investigations. The backend may cancel any investigation. Only pending or processing rows can be
   cancelled (RNI01); the row is locked before its status is read, so a cancel racing with
   complete_investigation either wins or fails with RNI01. The workflow trigger still applies. */
create or replace function private.cancel_investigation(investigation_id uuid)
returns public.investigations
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  backend boolean := private.request_is_backend();
  current_status text;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = cancel_investigation.investigation_id
     and (backend
          or (i.user_id = auth.uid() and i.client_id = private.current_client_id('viewer')))
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', cancel_investigation.investigation_id);
  end if;
  if current_status not in ('pending', 'processing') then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to cancelled',
                                  cancel_investigation.investigation_id, current_status),
      hint = 'Only a pending or processing investigation can be cancelled.';
  end if;
  update public.investigations as i
     set status = 'cancelled'
   where i.id = cancel_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function private.cancel_investigation(uuid) is
  'Cancels a pending or processing investigation of the calling user, or any investigation for the backend (a role that bypasses RLS): PT404 when not found or not the caller''s, RNI01 when it already ended. Called through public.cancel_investigation.';

revoke all on function private.cancel_investigation(uuid) from public;
grant execute on function private.cancel_investigation(uuid) to authenticated, service_role;
