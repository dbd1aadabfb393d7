/* why: seed 000 keeps a document history (document_versions) that no caller may forge or skip,
   so the database writes it: one row per insert, real update and delete of public.documents,
   numbered 1, 2, 3... per document, with the caller (auth.uid(), null for the backend), the
   columns that changed and a snapshot of the row. Version numbers cannot collide: update and
   delete hold the document's row lock, and (document_id, version_number) is unique as a backstop.
   An update that changes nothing but updated_at records nothing, and deleting a whole client
   leaves no history behind.
   security definer: API users may read versions but never write them (no grant, no policy);
   this function writes exactly one row per changed document, owned by that document's tenant. */
create or replace function private.tg_documents__record_version()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  doc public.documents := case when tg_op = 'DELETE' then old else new end;
  changed text;
  next_version integer;
begin
  -- A document deleted because its whole client is being deleted leaves no history: the
  -- client's versions are being deleted by the same statement.
  if tg_op = 'DELETE' and not exists (select from public.clients as c where c.id = old.client_id) then
    return null;
  end if;

  if tg_op = 'UPDATE' then
    select pg_catalog.string_agg(n.key, ', ' order by n.key)
      into changed
      from pg_catalog.jsonb_each(pg_catalog.to_jsonb(new)) as n
      join pg_catalog.jsonb_each(pg_catalog.to_jsonb(old)) as o using (key)
     where n.value is distinct from o.value
       and n.key <> 'updated_at';
    if changed is null then
      return null;
    end if;
  end if;

  select coalesce(max(v.version_number), 0) + 1
    into next_version
    from public.document_versions as v
   where v.client_id = doc.client_id
     and v.document_id = doc.id;

  insert into public.document_versions
    (client_id, document_id, version_number, change_type, changed_by, change_description, snapshot)
  values (
    doc.client_id,
    doc.id,
    next_version,
    (case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end)
      ::public.document_change_type,
    auth.uid(),
    case tg_op when 'UPDATE' then 'changed: ' || changed end,
    pg_catalog.to_jsonb(doc)
  );
  return null;
end;
$$;

comment on function private.tg_documents__record_version() is
  'Trigger (after insert/update/delete on public.documents): appends a document_versions row with the next version number, the caller and the changed columns.';

revoke all on function private.tg_documents__record_version() from public, anon, authenticated, service_role;
