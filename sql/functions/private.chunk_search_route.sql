/* why: one place decides how public.search_embeddings finds a tenant's nearest chunks:
   - 'exact': rank every candidate by exact distance. Right by construction; the cheapest plan
     for few rows (about 10 us per 1536-d row). Chosen when the tenant, or the filtered subset,
     holds at most renum.search_exact_max_rows rows (default 1000).
   - 'tenant_index': walk the tenant's own partial HNSW index (registry
     private.tenant_chunk_indexes, state 'ready'). Its graph holds only the tenant's rows, so
     recall does not depend on the tenant's share of the table.
   - 'shared_index': walk the shared HNSW index filtering to the tenant. Only when the tenant's
     share of the table is at least renum.search_shared_min_share (default 0.5): below that the
     filtered walk spends its budget in other tenants' parts of the graph (issue 12: recall 0.87
     with queries at 0.0 for a 6% tenant).
   - otherwise 'exact' again: a mid-size tenant with a small share that is not promoted is
     searched exactly (right, slower); `renum-db tenant status` lists it as due for promotion.
   Rows and share come from statistics (private.chunk_tenant_estimate); before the first
   ANALYZE a bounded count decides between 'exact' and 'shared_index' (the plan of 0007).
   A filter (documents in scope, metadata) is counted, bounded, because statistics cannot say
   how many rows it keeps: a small filtered set is ranked exactly.
   One statement: CASE evaluates only the branches it reaches, so the counts and the statistics
   lookup (about 0.15 ms and ten catalog locks) run only when needed; a promoted tenant's search
   reads neither. language plpgsql, for its plan kept per session (a SQL function re-plans its
   body on every call before PostgreSQL 18). security invoker: the counts run under the caller's RLS. */
create or replace function private.chunk_search_route(
  client_id uuid,
  document_ids uuid[] default null,
  metadata_filter jsonb default null
)
returns text
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  return (
  with settings as (
    select coalesce(nullif(pg_catalog.current_setting('renum.search_exact_max_rows', true), '')
                      ::integer, 1000) as exact_max,
           coalesce(nullif(pg_catalog.current_setting('renum.search_shared_min_share', true), '')
                      ::double precision, 0.5) as min_share
  )
  select case
    when (chunk_search_route.document_ids is not null
          or chunk_search_route.metadata_filter is not null)
         and (select pg_catalog.count(*)
                from (select
                        from public.document_chunks as c
                       where c.client_id = chunk_search_route.client_id
                         and (chunk_search_route.document_ids is null
                              or c.document_id = any (chunk_search_route.document_ids))
                         and (chunk_search_route.metadata_filter is null
                              or c.metadata @> chunk_search_route.metadata_filter)
                       limit s.exact_max + 1) as bounded) <= s.exact_max
      then 'exact'
    when exists (select
                   from private.tenant_chunk_indexes as t
                  where t.client_id = chunk_search_route.client_id
                    and t.state = 'ready')
      then 'tenant_index'
    else (
      select case
               when e.tenant_rows is null
                 then case
                        when (select pg_catalog.count(*)
                                from (select
                                        from public.document_chunks as c
                                       where c.client_id = chunk_search_route.client_id
                                       limit s.exact_max + 1) as bounded) > s.exact_max
                          then 'shared_index'
                        else 'exact'
                      end
               when e.tenant_rows <= s.exact_max then 'exact'
               when e.share >= s.min_share then 'shared_index'
               else 'exact'
             end
        from (select) as one
        left join private.chunk_tenant_estimate(chunk_search_route.client_id) as e on true)
  end
    from settings as s);
end;
$$;

comment on function private.chunk_search_route(uuid, uuid[], jsonb) is
  'How public.search_embeddings searches one client: exact, tenant_index (the client''s own HNSW index, when promoted) or shared_index (the shared HNSW index, when the client holds at least renum.search_shared_min_share of the rows). See docs/retrieval.md.';

revoke all on function private.chunk_search_route(uuid, uuid[], jsonb) from public;
grant execute on function private.chunk_search_route(uuid, uuid[], jsonb) to authenticated, service_role;
