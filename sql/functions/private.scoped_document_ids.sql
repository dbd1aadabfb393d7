/* why: collection and knowledge-base filters are resolved once per call into the ids of the
   documents in scope (null = no filter), so the chunk scans test one `= any(...)` instead of
   joining per row; ids of another tenant simply match nothing (client_id is part of every
   predicate). security invoker: runs under the caller's RLS.
   language plpgsql (0033): its query is planned once per session, where a SQL function with a
   SET clause (never inlined) had its body parsed and planned on every call before PostgreSQL 18. */
create or replace function private.scoped_document_ids(
  client_id uuid,
  collection_ids uuid[],
  knowledge_base_ids uuid[]
)
returns uuid[]
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if scoped_document_ids.collection_ids is null
     and scoped_document_ids.knowledge_base_ids is null then
    return null;
  end if;
  return coalesce(
    (select pg_catalog.array_agg(d.id)
       from public.documents as d
       join public.knowledge_collections as k
         on k.client_id = d.client_id and k.id = d.collection_id
      where d.client_id = scoped_document_ids.client_id
        and (scoped_document_ids.collection_ids is null
             or d.collection_id = any (scoped_document_ids.collection_ids))
        and (scoped_document_ids.knowledge_base_ids is null
             or k.knowledge_base_id = any (scoped_document_ids.knowledge_base_ids))),
    '{}'::uuid[]);
end;
$$;

comment on function private.scoped_document_ids(uuid, uuid[], uuid[]) is
  'Ids of the client''s documents inside the given collections and/or knowledge bases; null when neither filter is given.';

revoke all on function private.scoped_document_ids(uuid, uuid[], uuid[]) from public;
grant execute on function private.scoped_document_ids(uuid, uuid[], uuid[]) to authenticated, service_role;
