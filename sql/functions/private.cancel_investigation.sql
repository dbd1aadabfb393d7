/* why: cancelling writes status, which owners may not write directly (no column privilege), so
   this function does it for them. security definer, therefore it re-checks what RLS would: for
   an API request (role anon/authenticated) the row must belong to the caller (user_id =
   auth.uid()) in the caller's active client, else it answers PT404 exactly as for an unknown id,
   so it discloses nothing about other users' investigations. Any other caller (service_role, the
   backend's own login) may cancel any investigation. Only pending or processing rows can be
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
  request_role text := pg_catalog.current_setting('role', true);
  current_status text;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = cancel_investigation.investigation_id
     and (request_role not in ('anon', 'authenticated')
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
  'Cancels a pending or processing investigation of the calling user (API roles) or any investigation (other roles): PT404 when not found or not the caller''s, RNI01 when it already ended. Called through public.cancel_investigation.';

revoke all on function private.cancel_investigation(uuid) from public;
grant execute on function private.cancel_investigation(uuid) to authenticated, service_role;
