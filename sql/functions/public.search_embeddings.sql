/* why: semantic search over one tenant's chunks, right for every tenant size.
   The common recipe (order by embedding <=> query limit k over an HNSW index, RLS filtering the
   rows) fails small tenants: pgvector filters after the index scan, so a tenant holding 0.2% of
   the rows gets almost nothing back. This function decides the plan per call:
   - it resolves the one tenant to search (private.request_client_id) and puts an explicit
     `client_id = <tenant>` predicate beside RLS, so the planner sees the tenant;
   - it counts the candidate chunks (tenant + filters), stopping at the exact-scan limit
     (setting renum.search_exact_max_rows, default 5000; chunks without an embedding count too,
     so the count stays an index-only scan). Up to that many, it ranks them all by
     exact cosine distance through the tenant's btree index (recall 1.0, cheap for small sets);
     the distance is written as extensions.cosine_distance(...) so the HNSW index is not used;
   - above it, it walks the HNSW index (private.nearest_chunks_hnsw: pgvector's iterative scan,
     relaxed order, ef_search 64, the planner held to the index), filtering to the tenant, takes
     4 x match_count candidates (at least 40) and keeps the match_count nearest by exact distance;
     if that yields fewer than match_count rows (a very selective filter), it falls back to the
     exact scan.
   A chunk whose stored embedding has no usable norm (NaN distance, sorted last) is never
   returned, so similarity is never NaN.
   Validation fails fast with 22004 (null) or 22023 (wrong dimension, a norm that is zero or not
   finite in pgvector's single precision, match_count
   outside 1..200, metadata_filter not an object, min_similarity outside [-1, 1]); pgvector itself
   rejects NaN and infinite components. (Multi-array unnest(a, b) is FROM-clause syntax that
   cannot be schema-qualified; pg_catalog is always searched first, so it is still safe.) When usage_agent_id is given, the returned chunks are
   recorded in document_usage_stats (private.record_chunk_usage) in the same transaction.
   security invoker: RLS applies on top of the explicit tenant predicate. volatile, because it
   may record usage. */
create or replace function public.search_embeddings(
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  min_similarity double precision default null,
  client_id uuid default null,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null
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
as $$
#variable_conflict use_column
declare
  tenant uuid;
  doc_ids uuid[];
  exact_limit integer := coalesce(
    nullif(pg_catalog.current_setting('renum.search_exact_max_rows', true), '')::integer, 5000);
  candidates bigint;
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

  tenant := private.request_client_id(search_embeddings.client_id);
  if collection_ids is not null or knowledge_base_ids is not null then
    doc_ids := private.scoped_document_ids(tenant, collection_ids, knowledge_base_ids);
  end if;

  select pg_catalog.count(*) into candidates
    from (select
            from public.document_chunks as c
           where c.client_id = tenant
             and (doc_ids is null or c.document_id = any (doc_ids))
             and (metadata_filter is null or c.metadata @> metadata_filter)
           limit exact_limit + 1) as bounded;

  if candidates > exact_limit then
    select pg_catalog.array_agg(n.id order by n.distance, n.id),
           pg_catalog.array_agg(n.distance order by n.distance, n.id)
      into ids, distances
      from (select h.id, h.distance
              from private.nearest_chunks_hnsw(tenant, query_embedding,
                                               greatest(match_count * 4, 40),
                                               doc_ids, metadata_filter) as h
             order by h.distance, h.id
             limit match_count) as n;
  end if;

  if coalesce(pg_catalog.cardinality(ids), 0) < least(match_count, candidates) then
    if usage_agent_id is null then
      -- The common case in one statement: rank and return (a similarity threshold commutes
      -- with "nearest first, then limit", so it can filter before the limit).
      -- Rank first, then join only the winners to their document and collection.
      return query
        select n.id, n.document_id, d.collection_id, k.knowledge_base_id, n.content, n.metadata,
               n.chunk_index, 1 - n.distance
          from (select c.id, c.document_id, c.content, c.metadata, c.chunk_index, c.client_id,
                       extensions.cosine_distance(c.embedding, query_embedding) as distance
                  from public.document_chunks as c
                 where c.client_id = tenant
                   and c.embedding is not null
                   and (doc_ids is null or c.document_id = any (doc_ids))
                   and (metadata_filter is null or c.metadata @> metadata_filter)
                 order by 7, 1
                 limit match_count) as n
          join public.documents as d on d.client_id = n.client_id and d.id = n.document_id
          join public.knowledge_collections as k
            on k.client_id = d.client_id and k.id = d.collection_id
         where n.distance <> 'NaN'::float8
           and (min_similarity is null or 1 - n.distance >= min_similarity)
         order by n.distance, n.id;
      return;
    end if;
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

  if ids is not null then
    select pg_catalog.array_agg(r.id order by r.ord), pg_catalog.array_agg(r.distance order by r.ord)
      into ids, distances
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
     where r.distance <> 'NaN'::float8
       and (min_similarity is null or 1 - r.distance >= min_similarity);
  end if;

  if usage_agent_id is not null and ids is not null then
    perform private.record_chunk_usage(tenant, usage_agent_id, ids, usage_execution_id);
  end if;

  return query
    select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
           c.chunk_index, 1 - r.distance
      from unnest(ids, distances) with ordinality as r (id, distance, ord)
      join public.document_chunks as c on c.client_id = tenant and c.id = r.id
      join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
      join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
     order by r.ord;
end;
$$;

comment on function public.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) is
  'Semantic search over the caller''s tenant: the match_count (1..200, default 5) chunks nearest to query_embedding (1536 dims) by cosine similarity, best first, optionally within collection_ids / knowledge_base_ids, whose metadata contains metadata_filter, and with similarity >= min_similarity. Exact for small candidate sets, HNSW iterative scan above renum.search_exact_max_rows (default 5000). The backend (service_role) must pass client_id. usage_agent_id (and usage_execution_id) record the returned chunks as used by that agent. Errors: 22004, 22023, 42501, PT404.';

revoke all on function public.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) from public, anon;
grant execute on function public.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid) to authenticated, service_role;
