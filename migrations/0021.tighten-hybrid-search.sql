-- depends: 0020.speed-up-hybrid-search
--
-- 0021 tighten-hybrid-search
-- what: 1. private.document_chunk_texts (client_id, id, document_id, fts): the chunks' full-text
--          vectors packed ~40 to a page, kept equal to document_chunks by triggers (a
--          statement-level insert trigger from the transition table; a row-level update trigger
--          on fts/document_id; deletes cascade), filled here from the existing chunks;
--       2. private.text_search_matches reads the text candidates from it (a small tenant whole,
--          a common word by a bounded key walk; a rare word still through the GIN index of
--          document_chunks), sizes the tenant with the bounded count private.chunk_search_route
--          keeps per session instead of pg_stats, and runs generic plans only (no EXECUTE);
--       3. private.hybrid_search maps each distinct knowledge base language once and, without
--          usage recording, fuses and joins the winners in one statement.
-- why: issue 12 target hybrid_search p50 <= 2x search_embeddings (measured 3.4-4.4x broad,
--      1.9-3.5x narrow at small scale before this migration): since 0019 keeps the 6 KB vector
--      in the row, every chunk a text search tested or ranked was a heap page of its own plus a
--      TOAST fetch of fts (a 1,000-row tenant's text scan 6.1 ms; a common word's pool of 200 in
--      the big tenant 1,500-1,700 pages); pg_stats cost 0.5 ms and ~15 catalog locks per call;
--      planning the EXECUTEd pool query 1.2-1.6 ms; the BitmapAnd the planner picked for a common
--      word read the big tenant's whole key range. Measurements: docs/retrieval.md.
-- Backfill: one insert of every chunk's (client_id, id, document_id, fts) in this transaction,
-- with a SHARE ROW EXCLUSIVE lock on document_chunks held by the triggers' creation (writers wait,
-- searches do not). document_chunks.fts keeps its storage (extended): stored in the row next to
-- the 6 KB vector, a real chunk's tsvector (40-70 words: 1.5-2.5 KB) pushes the row past a page
-- and PostgreSQL then moves the vector itself to TOAST (measured: an exact scan of 300 rows 1.93
-- against 1.00 ms); the text side reads the packed copy instead.
-- Signatures, results, validation and SQLSTATEs are unchanged.

set local lock_timeout = '10s';
set local statement_timeout = 0; -- the backfill grows with the table

/* why: private.text_search_matches tests and ranks a text against many chunks of one tenant;
   read from document_chunks, each chunk is a heap page (its 6 KB vector) and its fts a TOAST
   fetch. This table holds only what the text side needs, in the primary key's order of
   (client_id, id), so a tenant's rows are a few pages. Not exposed (schema private) and not
   granted to any API role: only the definer functions read it and the triggers on
   document_chunks write it. RLS enabled and forced with no policy: nothing else may read it. */
create table private.document_chunk_texts (
  client_id uuid not null,
  id uuid not null,
  document_id uuid not null,
  fts tsvector not null,
  constraint document_chunk_texts_pkey primary key (client_id, id),
  constraint document_chunk_texts_chunk_fk foreign key (client_id, id)
    references public.document_chunks (client_id, id) on update cascade on delete cascade
);

comment on table private.document_chunk_texts is
  'The full-text vector (fts) and document of every chunk of public.document_chunks, packed for private.text_search_matches; kept by triggers on document_chunks, deleted by cascade.';

alter table private.document_chunk_texts enable row level security;
alter table private.document_chunk_texts force row level security;

revoke all on table private.document_chunk_texts from public, anon, authenticated, service_role;

-- >>> sql/functions/private.tg_document_chunks__insert_texts.sql
/* why: private.document_chunk_texts (the chunks' full-text vectors, packed many to a page for
   private.text_search_matches) holds a row for every chunk. One statement-level trigger per
   insert statement or COPY, from its transition table: one insert, not one per row, so bulk
   loads pay one extra btree entry per chunk. security definer: API writers of chunks have no
   privilege on the private table; it copies only the rows the statement itself inserted. */
create or replace function private.tg_document_chunks__insert_texts()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  insert into private.document_chunk_texts (client_id, id, document_id, fts)
  select n.client_id, n.id, n.document_id, coalesce(n.fts, ''::pg_catalog.tsvector)
    from inserted_chunks as n;
  return null;
end;
$$;

comment on function private.tg_document_chunks__insert_texts() is
  'Trigger (after insert, per statement): copies the inserted chunks'' fts into private.document_chunk_texts.';

revoke all on function private.tg_document_chunks__insert_texts() from public, anon, authenticated, service_role;
-- <<< sql/functions/private.tg_document_chunks__insert_texts.sql

-- >>> sql/functions/private.tg_document_chunks__update_texts.sql
/* why: keeps private.document_chunk_texts equal to document_chunks when a chunk's text, language
   (so its fts) or document changes; a deleted chunk's row goes by the foreign key's cascade.
   Row-level, fired only by updates naming those columns (embedding updates do not fire it).
   security definer: API writers of chunks have no privilege on the private table. */
create or replace function private.tg_document_chunks__update_texts()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  update private.document_chunk_texts as t
     set document_id = new.document_id,
         fts = coalesce(new.fts, ''::pg_catalog.tsvector)
   where t.client_id = new.client_id
     and t.id = new.id;
  return null;
end;
$$;

comment on function private.tg_document_chunks__update_texts() is
  'Trigger (after update of fts or document_id, per row): updates the chunk''s row of private.document_chunk_texts.';

revoke all on function private.tg_document_chunks__update_texts() from public, anon, authenticated, service_role;
-- <<< sql/functions/private.tg_document_chunks__update_texts.sql

create trigger document_chunks_insert_texts
  after insert on public.document_chunks
  referencing new table as inserted_chunks
  for each statement execute function private.tg_document_chunks__insert_texts();

create trigger document_chunks_update_texts
  after update of fts, document_id on public.document_chunks
  for each row
  when (old.fts is distinct from new.fts or old.document_id is distinct from new.document_id)
  execute function private.tg_document_chunks__update_texts();

insert into private.document_chunk_texts (client_id, id, document_id, fts)
select c.client_id, c.id, c.document_id, coalesce(c.fts, ''::pg_catalog.tsvector)
  from public.document_chunks as c;

analyze private.document_chunk_texts;

-- >>> sql/functions/private.text_search_matches.sql
/* why: the text side of private.hybrid_search, with a cost that grows neither with the number of
   chunks a text matches nor with the table (issue 12).
   - security definer, because the GIN index on document_chunks.fts is unusable under RLS:
     `tsvector @@ tsquery` is not leakproof, so PostgreSQL may not evaluate it before the policy's
     predicate and never makes it an index condition; a viewer's text search then scans the whole
     table (measured: 19 ms for a one-chunk match in a 60k table, as a service_role search through
     the index takes 0.1 ms); and private.document_chunk_texts is not readable by API roles.
     Bypassing RLS, it re-checks the tenant itself, as private.record_chunk_usage does: unless the
     request is the backend (private.request_is_backend), `tenant` must be the caller's own active
     client (42501). Every predicate names the tenant (client_id = tenant).
   - bounded: it ranks (ts_rank_cd) at most `pool_size` matching chunks of the tenant in scope,
     plus every chunk of `semantic_ids` (the semantic list) that matches, and returns the `depth`
     best by rank (ties by id). When the tenant has at most pool_size matching chunks in scope,
     that is the exact text top-depth; above it (a broad text), see docs/retrieval.md "Hybrid
     search".
   - cheap per chunk (migration 0021): it reads the chunks' fts from private.document_chunk_texts
     (client_id, id, document_id, fts: ~40 rows a page) instead of document_chunks, where every row
     is a page of its own (the 6 KB vector) and fts was a TOAST fetch. A small tenant (within
     renum.search_exact_max_rows, known from the bounded count private.chunk_search_route keeps
     per session, which private.search_embeddings has just refreshed: no pg_stats) is walked
     whole in key order. Above it, the matching share of the semantic list (a sample of the
     tenant) tells a common word, whose matches a key walk meets early (bounded to 50 x
     pool_size rows), from a rare one, served by the GIN index of document_chunks. A metadata
     filter (not in the side table) reads document_chunks; so does a document scope of a larger
     tenant (through the document key when it holds fewer than 5 x pool_size chunks, else GIN). Generic plans only: planning a
     statement on document_chunks (seven indexes) cost 1.2-1.6 ms, more than running it.
   Returns the ranked ids, best first. stable (it only reads); plpgsql for the check. */
create or replace function private.text_search_matches(
  tenant uuid,
  query tsquery,
  depth integer,
  pool_size integer,
  semantic_ids uuid[] default null,
  document_ids uuid[] default null,
  metadata_filter jsonb default null
)
returns table (id uuid, rank real)
language plpgsql
stable
security definer
set search_path = ''
-- its statements name one tenant; a generic plan serves them (planning costs more than running)
set plan_cache_mode = 'force_generic_plan'
as $$
#variable_conflict use_column
declare
  pool_ids uuid[];
  pool_ranks real[];
  semantic_hits uuid[];
  semantic_ranks real[];
  hits integer;
  cache_key text;
  cached text;
  small boolean;
begin
  if tenant is null then
    raise exception using errcode = '22004', message = 'tenant is required';
  end if;
  -- The caller's own client first (cheap); the backend test reads pg_roles (0.14 ms).
  if private.current_client_id('viewer') is distinct from tenant
     and not private.request_is_backend() then
    raise exception using
      errcode = '42501',
      message = 'text search is only allowed in the caller''s own client';
  end if;
  if query is null or pg_catalog.numnode(query) = 0 then
    return;
  end if;

  -- Small: the whole tenant within renum.search_exact_max_rows ('<rows>@<bound>@...', rows <
  -- bound, as private.chunk_search_route keeps it; counted here if absent). Not the route
  -- itself: it also says 'exact' for a large tenant with a small share or a small document scope.
  cache_key := 'renum.chunk_route_' || pg_catalog.replace(tenant::text, '-', '');
  cached := pg_catalog.current_setting(cache_key, true);
  if cached is null or cached !~ '^[0-9]+@[0-9]+@' then
    perform private.chunk_search_route(tenant, null, null);
    cached := pg_catalog.current_setting(cache_key, true);
  end if;
  small := cached ~ '^[0-9]+@[0-9]+@'
           and pg_catalog.split_part(cached, '@', 1)::bigint
               < pg_catalog.split_part(cached, '@', 2)::bigint;

  -- The matching chunks of the semantic list, ranked: always in the result, and a sample of
  -- the tenant that tells a common word from a rare one. A small tenant's walk below meets them
  -- anyway unless it fills the pool: then they are read after it.
  if semantic_ids is not null and not (small and metadata_filter is null) then
    select pg_catalog.array_agg(t.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(t.fts, query))
      into semantic_hits, semantic_ranks
      from private.document_chunk_texts as t
     where t.client_id = tenant
       and t.id = any (semantic_ids)
       and t.fts operator(pg_catalog.@@) query;
  end if;
  hits := coalesce(pg_catalog.cardinality(semantic_hits), 0);

  -- The pool: at most pool_size matching chunks of the tenant in scope, ranked.
  if metadata_filter is null
     and (small or (document_ids is null and hits >= 2
                    and hits * 10 >= pg_catalog.cardinality(semantic_ids))) then
    -- A small tenant, or a common word: the tenant's packed rows in key order until pool_size
    -- matches (a large tenant's walk reads at most 50 x pool_size rows).
    if small then
      select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
        into pool_ids, pool_ranks
        from (select t.id, t.fts
                from private.document_chunk_texts as t
               where t.client_id = tenant
                 and (document_ids is null or t.document_id = any (document_ids))
                 and t.fts operator(pg_catalog.@@) query
               order by t.client_id, t.id
               limit pool_size) as p;
    else
      select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
        into pool_ids, pool_ranks
        from (select w.id, w.fts
                from (select t.id, t.fts
                        from private.document_chunk_texts as t
                       where t.client_id = tenant
                       order by t.client_id, t.id
                       limit pool_size * 50) as w
               where w.fts operator(pg_catalog.@@) query
               limit pool_size) as p;
    end if;
    if small and semantic_ids is not null
       and coalesce(pg_catalog.cardinality(pool_ids), 0) >= pool_size then
      select pg_catalog.array_agg(t.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(t.fts, query))
        into semantic_hits, semantic_ranks
        from private.document_chunk_texts as t
       where t.client_id = tenant
         and t.id = any (semantic_ids)
         and t.fts operator(pg_catalog.@@) query;
    end if;
    if small or coalesce(pg_catalog.cardinality(pool_ids), 0) >= pool_size then
      return query
        select m.id, max(m.rank) as rank
          from (select p.id, p.rank from unnest(pool_ids, pool_ranks) as p (id, rank)
                union all
                select s.id, s.rank from unnest(semantic_hits, semantic_ranks) as s (id, rank)) as m
         group by m.id
         order by 2 desc, 1
         limit depth;
      return;
    end if;
  end if;

  if small then
    -- A small tenant with a metadata filter: its rows of document_chunks through the key, the
    -- match tested per row (`|| ''` keeps the GIN index out of this plan).
    select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
      into pool_ids, pool_ranks
      from (select c.id, c.fts
              from public.document_chunks as c
             where c.client_id = tenant
               and (c.fts operator(pg_catalog.||) ''::pg_catalog.tsvector)
                   operator(pg_catalog.@@) query
               and (document_ids is null or c.document_id = any (document_ids))
               and c.metadata @> metadata_filter
             order by c.client_id, c.id
             limit pool_size) as p;
  elsif document_ids is not null
        and (select pg_catalog.count(*)
               from (select
                       from public.document_chunks as c
                      where c.client_id = tenant
                        and c.document_id = any (document_ids)
                      limit pool_size * 5) as bounded) < pool_size * 5 then
    -- A small document scope of a larger tenant (fewer than 5 x pool_size chunks, counted
    -- through the document key): its rows through that key, the match tested per row.
    select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
      into pool_ids, pool_ranks
      from (select c.id, c.fts
              from public.document_chunks as c
             where c.client_id = tenant
               and c.document_id = any (document_ids)
               and (c.fts operator(pg_catalog.||) ''::pg_catalog.tsvector)
                   operator(pg_catalog.@@) query
               and (metadata_filter is null or c.metadata @> metadata_filter)
             limit pool_size) as p;
  else
    -- A rare word (or a walk that ended short, or a large scope): the GIN posting list, the tenant tested per row
    -- (`is true` keeps the tenant's key range out of the bitmap: AND-ing it read the big
    -- tenant's whole range, 4 ms at 23k rows and growing with the tenant).
    select pg_catalog.array_agg(p.id), pg_catalog.array_agg(pg_catalog.ts_rank_cd(p.fts, query))
      into pool_ids, pool_ranks
      from (select c.id, c.fts
              from public.document_chunks as c
             where c.fts operator(pg_catalog.@@) query
               and (c.client_id = tenant) is true
               and (document_ids is null or c.document_id = any (document_ids))
               and (metadata_filter is null or c.metadata @> metadata_filter)
             limit pool_size) as p;
  end if;

  -- The pool and the matching semantic chunks, each chunk once (union all + max: a plain union
  -- hashes the ranks as well and measured 3-4x slower), best first.
  return query
    select m.id, max(m.rank) as rank
      from (select p.id, p.rank from unnest(pool_ids, pool_ranks) as p (id, rank)
            union all
            select s.id, s.rank from unnest(semantic_hits, semantic_ranks) as s (id, rank)) as m
     group by m.id
     order by 2 desc, 1
     limit depth;
end;
$$;

comment on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) is
  'The text list of hybrid search: up to depth chunks of the tenant matching query, best ts_rank_cd first, ranked among at most pool_size matching chunks (the first by id) plus the matching semantic_ids (exact when the tenant has at most pool_size matches). The caller''s own client only, unless the request is the backend (42501).';

revoke all on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) from public, anon, authenticated, service_role;
grant execute on function private.text_search_matches(uuid, tsquery, integer, integer, uuid[], uuid[], jsonb) to authenticated, service_role;
-- <<< sql/functions/private.text_search_matches.sql

-- >>> sql/functions/private.hybrid_search.sql
/* why: keyword and semantic search fused, for queries where exact words matter (names, codes,
   Portuguese terms an embedding blurs). Two ranked lists over the same tenant scope:
   - full text: document_chunks.fts (a generated tsvector, GIN-indexed) matched against the query
     parsed with websearch_to_tsquery in the text search configuration of every knowledge base in
     scope (Portuguese, English, ... per knowledge base; one parse per distinct language, OR-ed),
     ranked by ts_rank_cd in private.text_search_matches (security definer: the GIN index is
     unusable under RLS), over a bounded pool of 10 x depth matches (renum.hybrid_text_pool)
     plus every matching chunk of the semantic list: exact when the tenant has at most that many
     matches, bounded in cost when a broad text matches thousands (docs/retrieval.md);
   - semantic: private.search_embeddings (same scoping and validation, same tenant);
   each list takes the top depth = 2 x match_count (at most 200), and they are fused by reciprocal rank
   fusion: score = full_text_weight / (rrf_k + text_position) + semantic_weight / (rrf_k +
   semantic_position). Unlike the usual recipe, every component is returned: similarity (always
   computed), text_rank, both positions (null when a list did not return the chunk) and score.
   Errors as search_embeddings, plus 22004/22023 for an empty query_text, negative weights, both
   weights zero, or rrf_k < 1. security invoker; volatile because it may record usage; generic
   plans (its statements name one tenant; planning them cost more than running them); without
   usage recording, the fusion and the final join are one statement (0021).
   Returns public.hybrid_search_match, a named composite type, because a row found by one list
   only has null text_rank / positions: PostgREST's type generator types `returns table` columns
   as never null but composite fields as nullable. Called through public.hybrid_search and
   backend.hybrid_search, which decide the tenant. */
create or replace function private.hybrid_search(
  tenant uuid,
  query_text text,
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  full_text_weight double precision default 1,
  semantic_weight double precision default 1,
  rrf_k integer default 50,
  usage_agent_id uuid default null,
  usage_execution_id uuid default null
)
returns setof public.hybrid_search_match
language plpgsql
volatile
security invoker
set search_path = ''
-- generic plans: planning these statements (joins over document_chunks and its indexes) costs
-- more than running them for a small tenant; each names one tenant, which a generic plan serves.
set plan_cache_mode = 'force_generic_plan'
as $$
#variable_conflict use_column
declare
  doc_ids uuid[];
  depth integer;
  languages text[];
  config regconfig;
  query tsquery;
  pool integer;
  semantic_ids uuid[];
  ids uuid[];
  similarities double precision[];
  text_ranks real[];
  semantic_positions integer[];
  text_positions integer[];
  scores double precision[];
begin
  if query_text is null or pg_catalog.btrim(query_text) = '' then
    raise exception using errcode = '22004', message = 'query_text is required';
  end if;
  if full_text_weight is null or semantic_weight is null
     or full_text_weight < 0 or semantic_weight < 0
     or full_text_weight = 'NaN'::float8 or semantic_weight = 'NaN'::float8
     or (full_text_weight = 0 and semantic_weight = 0) then
    raise exception using
      errcode = '22023',
      message = 'full_text_weight and semantic_weight must be >= 0 and not both 0';
  end if;
  if rrf_k is null or rrf_k < 1 then
    raise exception using errcode = '22023', message = pg_catalog.format('rrf_k must be >= 1, got %s', rrf_k);
  end if;
  if match_count is null or match_count < 1 or match_count > 200 then
    raise exception using
      errcode = '22023',
      message = pg_catalog.format('match_count must be between 1 and 200, got %s', match_count);
  end if;
  if collection_ids is not null or knowledge_base_ids is not null then
    doc_ids := private.scoped_document_ids(tenant, collection_ids, knowledge_base_ids);
  end if;
  depth := least(200, match_count * 2);
  pool := coalesce(nullif(pg_catalog.current_setting('renum.hybrid_text_pool', true), '')::integer,
                   10 * depth);

  -- One parse per distinct language in scope (usually one), OR-ed; each name mapped once
  -- (private.text_search_regconfig per knowledge base row cost 0.1 ms more).
  select pg_catalog.array_agg(distinct kb.text_search_config)
    into languages
    from public.knowledge_bases as kb
   where kb.client_id = tenant
     and (knowledge_base_ids is null or kb.id = any (knowledge_base_ids));
  if languages is not null then
    for i in 1 .. pg_catalog.cardinality(languages) loop
      config := private.text_search_regconfig(languages[i]);
      if config is not null then
        query := case when query is null then pg_catalog.websearch_to_tsquery(config, query_text)
                      else query operator(pg_catalog.||)
                           pg_catalog.websearch_to_tsquery(config, query_text) end;
      end if;
    end loop;
    if pg_catalog.numnode(query) = 0 then
      query := null;  -- only stop words: the text side contributes nothing
    end if;
  end if;

  select pg_catalog.array_agg(s.id order by s.pos), pg_catalog.array_agg(s.similarity order by s.pos)
    into semantic_ids, similarities
    from private.search_embeddings(
           tenant, query_embedding, depth, collection_ids, knowledge_base_ids, metadata_filter,
           null) with ordinality as s (id, document_id, collection_id, knowledge_base_id,
                                       content, metadata, chunk_index, similarity, pos);

  if usage_agent_id is null then
    -- The common case in one statement: fuse, keep the best match_count, join them.
    return query
      with semantic as (
        select s.id, s.similarity, s.pos
          from unnest(semantic_ids, similarities) with ordinality as s (id, similarity, pos)
      ),
      lexical as (
        select t.id, t.rank, t.pos
          from private.text_search_matches(tenant, query, depth, pool, semantic_ids, doc_ids,
                                           metadata_filter) with ordinality as t (id, rank, pos)
      ),
      fused as (
        select coalesce(s.id, l.id) as id, s.similarity, s.pos::integer as semantic_position,
               l.pos::integer as text_position, l.rank as text_rank,
               coalesce(full_text_weight / (rrf_k + l.pos), 0)
               + coalesce(semantic_weight / (rrf_k + s.pos), 0) as score
          from semantic as s
          full join lexical as l on l.id = s.id
      ),
      best as (
        select * from fused order by score desc, id limit match_count
      )
      select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
             c.chunk_index,
             coalesce(f.similarity,
                      nullif(1 - extensions.cosine_distance(c.embedding, query_embedding), 'NaN')),
             f.text_rank, f.semantic_position, f.text_position, f.score
        from best as f
        join public.document_chunks as c on c.client_id = tenant and c.id = f.id
        join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
        join public.knowledge_collections as k
          on k.client_id = d.client_id and k.id = d.collection_id
       order by f.score desc, f.id;
    return;
  end if;

  with semantic as (
    select s.id, s.similarity, s.pos
      from unnest(semantic_ids, similarities) with ordinality as s (id, similarity, pos)
  ),
  lexical as (
    select t.id, t.rank, t.pos
      from private.text_search_matches(tenant, query, depth, pool, semantic_ids, doc_ids,
                                       metadata_filter) with ordinality as t (id, rank, pos)
  ),
  fused as (
    select coalesce(s.id, l.id) as id, s.similarity, s.pos::integer as semantic_position,
           l.pos::integer as text_position, l.rank as text_rank,
           coalesce(full_text_weight / (rrf_k + l.pos), 0)
           + coalesce(semantic_weight / (rrf_k + s.pos), 0) as score
      from semantic as s
      full join lexical as l on l.id = s.id
  )
  select pg_catalog.array_agg(f.id order by f.score desc, f.id),
         pg_catalog.array_agg(f.similarity order by f.score desc, f.id),
         pg_catalog.array_agg(f.text_rank order by f.score desc, f.id),
         pg_catalog.array_agg(f.semantic_position order by f.score desc, f.id),
         pg_catalog.array_agg(f.text_position order by f.score desc, f.id),
         pg_catalog.array_agg(f.score order by f.score desc, f.id)
    into ids, similarities, text_ranks, semantic_positions, text_positions, scores
    from (select * from fused order by score desc, id limit match_count) as f;

  if usage_agent_id is not null and ids is not null then
    perform private.record_chunk_usage(tenant, usage_agent_id, ids, usage_execution_id);
  end if;

  return query
    select c.id, c.document_id, d.collection_id, k.knowledge_base_id, c.content, c.metadata,
           c.chunk_index,
           coalesce(r.similarity,
                    nullif(1 - extensions.cosine_distance(c.embedding, query_embedding), 'NaN')),
           r.text_rank, r.semantic_position, r.text_position, r.score
      from unnest(ids, similarities, text_ranks, semantic_positions, text_positions,
                             scores)
             with ordinality as r (id, similarity, text_rank, semantic_position, text_position,
                                   score, ord)
      join public.document_chunks as c on c.client_id = tenant and c.id = r.id
      join public.documents as d on d.client_id = c.client_id and d.id = c.document_id
      join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
     order by r.ord;
end;
$$;

comment on function private.hybrid_search(uuid, text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) is
  'Hybrid search over one tenant (resolved by public.hybrid_search or backend.hybrid_search): full text and semantic similarity fused by reciprocal rank fusion, every component score returned.';

revoke all on function private.hybrid_search(uuid, text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function private.hybrid_search(uuid, text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid) to authenticated, service_role;
-- <<< sql/functions/private.hybrid_search.sql

notify pgrst, 'reload schema';
