/* why: "which documents do our agents actually use?" per client, or per agent, from
   document_usage_stats. security invoker: RLS on document_usage_stats and documents limits the
   answer to the caller's tenant (the backend, bypassing RLS, passes client_id). stable and
   read-only, so PostgREST may serve it over GET. */
create or replace function public.most_used_documents(
  match_count integer default 10,
  agent_id uuid default null,
  client_id uuid default null
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
declare
  tenant uuid;
begin
  if match_count is null or match_count < 1 or match_count > 1000 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('match_count must be between 1 and 1000, got %s', match_count);
  end if;
  tenant := private.request_client_id(most_used_documents.client_id);
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

comment on function public.most_used_documents(integer, uuid, uuid) is
  'The caller''s most used documents (by total chunk uses), optionally for one agent: usage_count, distinct chunks and agents, first and last use. match_count 1..1000 (default 10). The backend passes client_id.';

revoke all on function public.most_used_documents(integer, uuid, uuid) from public, anon;
grant execute on function public.most_used_documents(integer, uuid, uuid) to authenticated, service_role;
