/* why: "which documents do our agents actually use?" per client, or per agent, from
   document_usage_stats, for one tenant decided by the caller (public.most_used_documents: the
   user's own client; backend.most_used_documents: the client the backend names).
   security invoker: RLS on document_usage_stats and documents applies on top of the explicit
   tenant predicate. stable and read-only. */
create or replace function private.most_used_documents(
  tenant uuid,
  match_count integer default 10,
  agent_id uuid default null
)
returns table (
  document_id uuid,
  name text,
  collection_id uuid,
  usage_count bigint,
  chunks_used bigint,
  agents bigint,
  first_used_at timestamptz,
  last_used_at timestamptz
)
language plpgsql
stable
security invoker
set search_path = ''
as $$
#variable_conflict use_column
begin
  if match_count is null or match_count < 1 or match_count > 1000 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('match_count must be between 1 and 1000, got %s', match_count);
  end if;
  return query
    select d.id, d.name, d.collection_id,
           pg_catalog.sum(s.usage_count)::bigint,
           pg_catalog.count(distinct s.chunk_id),
           pg_catalog.count(distinct s.agent_id),
           pg_catalog.min(s.first_used_at),
           pg_catalog.max(s.last_used_at)
      from public.document_usage_stats as s
      join public.documents as d on d.client_id = s.client_id and d.id = s.document_id
     where s.client_id = tenant
       and (most_used_documents.agent_id is null or s.agent_id = most_used_documents.agent_id)
     group by d.id, d.name, d.collection_id
     order by 4 desc, 8 desc, 1
     limit match_count;
end;
$$;

comment on function private.most_used_documents(uuid, integer, uuid) is
  'One tenant''s most used documents (by total chunk uses), optionally for one agent; match_count 1..1000. Called by public.most_used_documents and backend.most_used_documents.';

revoke all on function private.most_used_documents(uuid, integer, uuid) from public, anon, authenticated, service_role;
grant execute on function private.most_used_documents(uuid, integer, uuid) to authenticated, service_role;
