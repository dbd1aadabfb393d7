/* why: what an operator needs to decide promotions (`renum-db tenant status`): every client that
   has a per-tenant index or is big enough to want one, with its exact row count and share of
   document_chunks (counted here, not estimated: an operator command may read the client_id
   index once), the route searches take now, the index's state, validity and size, and what to
   do: 'promote' (no index, more rows than the exact-scan limit, and a share below
   renum.search_shared_min_share, or, since 0025, at least renum.search_second_graph_min_rows
   rows (default 100,000): a majority tenant that big gets a second graph of its own, walked
   together with the shared one, because one graph that size leaves 1-2% of queries without
   their true neighbours; see private.chunk_search_route), 'demote' (an index for a client down to half the
   exact-scan limit or less, where the exact scan is as fast), 'resume' (a promotion or demotion
   that stopped half-way). Since 0028 it also lists each client's second graph
   (document_chunks_hnswh_<client hex>, walked with the first: private.nearest_chunks_tenant_index)
   and advises 'promote' for a ready client above the exact-scan limit with a share below
   renum.search_shared_min_share that lacks a valid one (promoted before 0028): promoting again
   builds it, concurrently, and keeps the first. Not granted to API roles: the operator's login
   runs it. security invoker. */
create or replace function private.tenant_chunk_index_status()
returns table (
  client_id uuid,
  chunk_rows bigint,
  share double precision,
  route text,
  index_name text,
  state text,
  index_valid boolean,
  index_bytes bigint,
  second_index_name text,
  second_index_bytes bigint,
  advice text
)
language sql
stable
security invoker
set search_path = ''
as $$
  with settings as (
    select coalesce(nullif(pg_catalog.current_setting('renum.search_exact_max_rows', true), '')
                      ::integer, 1000) as exact_max,
           coalesce(nullif(pg_catalog.current_setting('renum.search_shared_min_share', true), '')
                      ::double precision, 0.5) as min_share,
           coalesce(nullif(pg_catalog.current_setting('renum.search_second_graph_min_rows', true),
                           '')::bigint, 100000) as second_graph_min
  ), counts as (
    select c.client_id, pg_catalog.count(*) as n
      from public.document_chunks as c
     group by c.client_id
  ), total as (
    select greatest(coalesce(sum(k.n), 0), 1)::double precision as n from counts as k
  ), rows as (
    select coalesce(k.client_id, r.client_id) as client_id,
           coalesce(k.n, 0) as n,
           r.index_name, r.state
      from counts as k
      full join private.tenant_chunk_indexes as r on r.client_id = k.client_id
  )
  select w.client_id, w.n, w.n / t.n,
         private.chunk_search_route(w.client_id),
         w.index_name, w.state, i.indisvalid,
         case when i.indexrelid is not null then pg_catalog.pg_relation_size(i.indexrelid) end,
         hc.relname::text,
         case when hc.oid is not null then pg_catalog.pg_relation_size(hc.oid) end,
         case
           when w.state in ('building', 'retiring') then 'resume'
           when w.state is null and w.n > s.exact_max
                and (w.n / t.n < s.min_share or w.n >= s.second_graph_min) then 'promote'
           when w.state = 'ready' and w.n <= s.exact_max / 2 then 'demote'
           when w.state = 'ready' and w.n > s.exact_max and w.n / t.n < s.min_share
                and not coalesce(h.indisvalid, false) then 'promote'
         end
    from rows as w
    cross join total as t
    cross join settings as s
    left join pg_catalog.pg_class as ic
      on ic.relname = w.index_name and ic.relnamespace = 'public'::pg_catalog.regnamespace
    left join pg_catalog.pg_index as i on i.indexrelid = ic.oid
    left join pg_catalog.pg_class as hc
      on hc.relname = 'document_chunks_hnswh_' || pg_catalog.replace(w.client_id::text, '-', '')
     and hc.relnamespace = 'public'::pg_catalog.regnamespace
    left join pg_catalog.pg_index as h on h.indexrelid = hc.oid
   where w.state is not null or w.n > s.exact_max
   order by w.n desc, w.client_id
$$;

comment on function private.tenant_chunk_index_status() is
  'Per-tenant HNSW indexes for operators: each client with an index or more chunks than renum.search_exact_max_rows, its rows, share, current search route, index state/validity/size, its second graph (name and size) and advice (promote: a mid-size client with a small share, or a client of at least renum.search_second_graph_min_rows rows, or a promoted client with a small share and no valid second graph; demote; resume).';

revoke all on function private.tenant_chunk_index_status() from public;
