/* why: semantic search over one tenant's chunks, right for every tenant size.
   The common recipe (order by embedding <=> query limit k over an HNSW index, RLS filtering the
   rows) fails small tenants: pgvector filters after the index scan, so a tenant holding 0.2% of
   the rows gets almost nothing back. This function decides the plan per call:
   - its callers resolve the one tenant to search (public.search_embeddings: the user's own
     client; backend.search_embeddings: the client the backend names) and it puts an explicit
     `client_id = <tenant>` predicate beside RLS, so the planner sees the tenant;
   - private.chunk_search_route chooses the plan from the tenant's size and share of the table
     (planner statistics) and its per-tenant index (registry private.tenant_chunk_indexes):
     'exact' ranks every candidate by exact cosine distance through the tenant's btree index
     (recall 1.0; written as extensions.cosine_distance(...) so no HNSW index is used);
     'tenant_index' walks the tenant's own partial HNSW index; 'shared_index' walks the shared
     one filtering to the tenant (private.nearest_chunks). A walk takes 3 x match_count
     candidates (at least 40; 4 x before 0027: at ef_search 64 a depth-20 list asked for 80,
     a second round of the iterative scan for 15-30% more time and no better recall) and keeps
     the match_count nearest by exact distance; if that
     yields fewer than match_count rows (a very selective filter), the exact scan runs instead.
     See docs/retrieval.md.
   A chunk whose stored embedding has no usable norm (NaN distance, sorted last) is never
   returned, so similarity is never NaN.
   Validation fails fast with 22004 (null) or 22023 (wrong dimension, a norm that is zero or not
   finite in pgvector's single precision, match_count
   outside 1..200, metadata_filter not an object, min_similarity outside [-1, 1]); pgvector itself
   rejects NaN and infinite components. (Multi-array unnest(a, b) is FROM-clause syntax that
   cannot be schema-qualified; pg_catalog is always searched first, so it is still safe.) When usage_agent_id is given, the returned chunks are
   recorded in document_usage_stats (private.record_chunk_usage) in the same transaction.
   security invoker: RLS applies on top of the explicit tenant predicate. volatile, because it
   may record usage. Called through public.search_embeddings and backend.search_embeddings,
   the only places that decide the tenant. Every route ranks first (ids and distances only) and then joins the winners to their chunk,
   document and collection by primary key (0022): the one-statement exact path of 0019 sorted
   whole rows and, with a kept generic plan, joined documents by a sequential scan per result
   row (the plan a small documents table gets). ranked_only (0023) returns the ranked ids and
   similarities without the join (the other columns null): private.hybrid_search's semantic
   list, which joins only the fused winners.
   The exact route without usage recording ranks and returns in one statement (0029): the ranked
   subquery keeps only id, document_id and distance (so the top-N sort never carries content),
   and the winners are joined by primary key in the same statement, instead of collecting two
   arrays and unnesting them into a second one. Measured on the benchmark's 100-row tenant
   (kept 424k-row database, viewer, interleaved): 0.39 against 0.45 ms, the bare exact scan
   0.28 ms; this is where the fixed cost of a small tenant's call was largest.
   Since 0031 that statement serves unfiltered calls only (no document scope, no metadata
   filter), and carries no `(x is null or ...)` guard: evaluated on every row of the tenant, the
   two guards cost 0.03 ms of a 0.4 ms call, and their selectivity (unknown to a generic plan)
   shrank the estimate of the ranked rows until a small documents table was joined by a
   sequential scan per winner (0.07 ms). A filtered call of a small tenant ranks into the arrays
   below, as before 0029 (measured no slower). */
create or replace function private.search_embeddings(
  tenant uuid,
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  min_similarity double precision default null,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null,
  ranked_only boolean default false
)
returns table (
  id uuid,
  document_id uuid,
  collection_id uuid,
  knowledge_base_id uuid,
  content text,
  metadata jsonb,
  chunk_index integer,
  similarity double precision
)
language plpgsql
volatile
security invoker
set search_path = ''
-- [retrieval, issue 12] generic plans: planning these statements (seven indexes on
-- document_chunks) costs more than running them for a small tenant (0.55-0.9 ms against
-- 0.2-0.3 ms); every statement filters on client_id = <one tenant>, which a generic plan serves.
set plan_cache_mode = 'force_generic_plan'
-- [retrieval, issue 12] one process, no JIT (0032): these plans are generic, so their costs
-- are an average tenant's (400k rows / 7 tenants: 60k rows), not the searched one's. From
-- that cost the planner launched two parallel workers for a 100-row tenant's exact scan
-- (5.6 ms instead of 0.5) and, for the majority tenant's shared walk, a parallel scan of the
-- whole table (90-108 ms instead of 7); where JIT is available it would compile every
-- execution of such a plan. A search reads one tenant: neither pays for itself here.
set max_parallel_workers_per_gather = 0
set jit = off
as $$
#variable_conflict use_column
declare
  doc_ids uuid[];
  route text;
  ids uuid[];
  distances double precision[];
begin
  if query_embedding is null then
    raise exception using errcode = '22004', message = 'query_embedding is required';
  end if;
  if extensions.vector_dims(query_embedding) <> 1536 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('query_embedding has %s dimensions; chunks are embedded with 1536',
                                  extensions.vector_dims(query_embedding));
  end if;
  -- pgvector computes cosine distance in single precision: a norm that is zero or infinite
  -- there (1536 x 1e-45 squares to 0; 1e20 squares to infinity) makes every distance NaN, even
  -- when the double-precision vector_norm is positive and finite. Ask pgvector itself.
  if extensions.cosine_distance(query_embedding, query_embedding) = 'NaN'::float8 then
    raise exception using
      errcode = '22023',
      message = 'query_embedding must have a non-zero, finite norm in single precision';
  end if;
  if match_count is null or match_count < 1 or match_count > 200 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('match_count must be between 1 and 200, got %s', match_count);
  end if;
  if metadata_filter is not null and pg_catalog.jsonb_typeof(metadata_filter) <> 'object' then
    raise exception using errcode = '22023', message = 'metadata_filter must be a JSON object';
  end if;
  if min_similarity is not null
     and (min_similarity = 'NaN'::float8 or min_similarity < -1 or min_similarity > 1) then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('min_similarity must be between -1 and 1, got %s', min_similarity);
  end if;

  if collection_ids is not null or knowledge_base_ids is not null then
    doc_ids := private.scoped_document_ids(tenant, collection_ids, knowledge_base_ids);
  end if;

  -- [retrieval route, issue 12: begin] private.chunk_search_route picks 'exact', 'tenant_index'
  -- or 'shared_index'; an index walk over-fetches 4 x match_count (at least 40) and keeps the
  -- match_count nearest by exact distance; a walk that yields fewer than match_count rows (a
  -- very selective filter) falls back to the exact scan below.
  route := private.chunk_search_route(tenant, doc_ids, metadata_filter);
  if route = 'exact' and doc_ids is null and metadata_filter is null and usage_agent_id is null
     and not ranked_only then
    return query
      select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
             c.chunk_index, 1 - r.distance
        from (select e.id, e.document_id,
                     extensions.cosine_distance(e.embedding, query_embedding) as distance
                from public.document_chunks as e
               where e.client_id = tenant
                 and e.embedding is not null
               order by 3, 1
               limit match_count) as r
        join public.document_chunks as c on c.client_id = tenant and c.id = r.id
        join public.documents as d on d.client_id = tenant and d.id = r.document_id
        join public.knowledge_collections as k on k.client_id = tenant and k.id = d.collection_id
       where r.distance <> 'NaN'::float8
         and (min_similarity is null or 1 - r.distance >= min_similarity)
       order by r.distance, r.id;
    return;
  end if;
  if route <> 'exact' then
    select pg_catalog.array_agg(n.id order by n.distance, n.id),
           pg_catalog.array_agg(n.distance order by n.distance, n.id)
      into ids, distances
      from (select h.id, h.distance
              from private.nearest_chunks(route, tenant, query_embedding,
                                          greatest(match_count * 3, 40),
                                          doc_ids, metadata_filter) as h
             order by h.distance, h.id
             limit match_count) as n;
  end if;

  if route = 'exact' or coalesce(pg_catalog.cardinality(ids), 0) < match_count then
  -- [retrieval route: end]
    select pg_catalog.array_agg(n.id order by n.distance, n.id),
           pg_catalog.array_agg(n.distance order by n.distance, n.id)
      into ids, distances
      from (select c.id, extensions.cosine_distance(c.embedding, query_embedding) as distance
              from public.document_chunks as c
             where c.client_id = tenant
               and c.embedding is not null
               and (doc_ids is null or c.document_id = any (doc_ids))
               and (metadata_filter is null or c.metadata @> metadata_filter)
             order by 2, 1
             limit match_count) as n;
  end if;

  -- Chunks without a usable distance (NaN) and below min_similarity are dropped in the final
  -- statement; when usage is recorded, the same filter runs first so that exactly the returned
  -- chunks are recorded (a separate statement only then: each one costs an executor start).
  if usage_agent_id is not null and ids is not null then
    select pg_catalog.array_agg(r.id order by r.ord), pg_catalog.array_agg(r.distance order by r.ord)
      into ids, distances
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
     where r.distance <> 'NaN'::float8
       and (min_similarity is null or 1 - r.distance >= min_similarity);
    if ids is not null then
      perform private.record_chunk_usage(tenant, usage_agent_id, ids, usage_execution_id);
    end if;
  end if;

  if ranked_only then
    -- private.hybrid_search's semantic list: ids and similarities only (it joins its own
    -- winners; joining these 2 x match_count rows here was wasted).
    return query
      select r.id, null::uuid, null::uuid, null::uuid, null::text, null::jsonb, null::integer,
             1 - r.distance
        from unnest(ids, distances) with ordinality as r (id, distance, ord)
       where r.distance <> 'NaN'::float8
         and (min_similarity is null or 1 - r.distance >= min_similarity)
       order by r.ord;
    return;
  end if;
  return query
    select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
           c.chunk_index, 1 - r.distance
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
      join public.document_chunks as c on c.client_id = tenant and c.id = r.id
      join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
      join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
     where r.distance <> 'NaN'::float8
       and (min_similarity is null or 1 - r.distance >= min_similarity)
     order by r.ord;
end;
$$;

comment on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, boolean) is
  'Semantic search over one tenant''s chunks (the tenant is resolved by the caller: public.search_embeddings or backend.search_embeddings). Exact for small tenants and small filtered sets, otherwise an HNSW walk of the tenant''s own index (promoted tenants) or of the shared index (docs/retrieval.md).';

revoke all on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, boolean) from public, anon, authenticated, service_role;
grant execute on function private.search_embeddings(uuid, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, boolean) to authenticated, service_role;
