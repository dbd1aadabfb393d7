-- 0012 rollback: drop the policies of the `documents` bucket on storage.objects.
-- The bucket itself is kept on purpose: it may hold tenants' files, a bucket row cannot be
-- deleted while objects reference it (objects_bucketId_fkey), and deleting rows behind Storage's
-- back would orphan the files in the object store. Without policies the private bucket is closed
-- to every API user (RLS denies by default), so keeping it grants nothing; applying 0012 again
-- finds it and leaves it alone (on conflict do nothing).

set local lock_timeout = '10s';
set local statement_timeout = '5min';

drop policy if exists renum_documents_objects_delete on storage.objects;
drop policy if exists renum_documents_objects_update on storage.objects;
drop policy if exists renum_documents_objects_insert on storage.objects;
drop policy if exists renum_documents_objects_select on storage.objects;

notify pgrst, 'reload schema';
