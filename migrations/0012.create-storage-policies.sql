-- depends: 0008.create-document-chunks-fts-index
--
-- 0012 create-storage-policies
-- what: the private Storage bucket `documents` (where missing) and the RLS policies on
-- storage.objects that confine each tenant's users to the folder `<client_id>/` of that bucket:
-- viewers read, members (and admins) upload, overwrite, move and delete.
-- why: uploaded files are tenant data like any row; Supabase Storage enforces access only through
-- policies on storage.objects, and without any the bucket is closed to every API user.
-- On Supabase the migrating role `postgres` does not own storage.objects: it may create and drop
-- policies on it (supautils privileged role), but not alter the table, so this migration never
-- does (RLS is already enabled there by Supabase, and by the local shim).

set local lock_timeout = '10s';
set local statement_timeout = '5min';

-- A bucket created beforehand (dashboard, another environment) is kept as it is.
insert into storage.buckets (id, name, public)
values ('documents', 'documents', false)
on conflict do nothing;

-- >>> sql/policies/storage_bucket.sql.j2 bucket=documents select=viewer insert=member update=member delete=member
/* why: files of a tenant live in the private Storage bucket 'documents' under a folder named
   after the tenant: '<client_id>/<anything>'. Supabase Storage runs every API call as the caller's
   JWT role against storage.objects, so these policies are what keeps one tenant's files from
   another's, exactly like the policies on public tables: the first folder of the object name must
   be the caller's client id, resolved from public.users by private.current_client_id(min_role)
   (null, so nothing matches, for no profile, no client, an inactive client or a role too low).
   storage.objects is shared with every other app of the project, so each policy names the app
   and the bucket and tests bucket_id first: it grants nothing in any other bucket, and adds
   nothing to, nor takes anything from, other apps' policies. No policy for anon (private bucket)
   and none for service_role (bypasses RLS: the backend). Both `using` and `with check` on update
   keep a move (a rename of `name`) inside the caller's own folder of this bucket.
   Rendered for bucket documents: select=viewer, insert=member, update=member, delete=member. */
create policy renum_documents_objects_select on storage.objects
  for select to authenticated
  using (
    bucket_id = 'documents'
    and (storage.foldername(name))[1] = (select private.current_client_id('viewer'))::text
  );

create policy renum_documents_objects_insert on storage.objects
  for insert to authenticated
  with check (
    bucket_id = 'documents'
    and (storage.foldername(name))[1] = (select private.current_client_id('member'))::text
  );

create policy renum_documents_objects_update on storage.objects
  for update to authenticated
  using (
    bucket_id = 'documents'
    and (storage.foldername(name))[1] = (select private.current_client_id('member'))::text
  )
  with check (
    bucket_id = 'documents'
    and (storage.foldername(name))[1] = (select private.current_client_id('member'))::text
  );

create policy renum_documents_objects_delete on storage.objects
  for delete to authenticated
  using (
    bucket_id = 'documents'
    and (storage.foldername(name))[1] = (select private.current_client_id('member'))::text
  );
-- <<< sql/policies/storage_bucket.sql.j2 bucket=documents select=viewer insert=member update=member delete=member

notify pgrst, 'reload schema';
