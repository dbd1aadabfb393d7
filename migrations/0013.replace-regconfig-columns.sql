-- depends: 0012.create-storage-policies
--
-- 0013 replace-regconfig-columns
-- what: knowledge_bases.text_search_config and document_chunks.text_search_config become `text`
-- with a check constraint on the supported languages (simple, portuguese, english, spanish);
-- private.text_search_regconfig(text) maps a name to its regconfig for the generated column
-- document_chunks.fts and for hybrid_search. The fts column and its GIN index are rebuilt.
-- why: pg_upgrade refuses tables with `regconfig` columns (they store catalog OIDs), so the two
-- columns would block a Supabase major-version upgrade (advisor lint unsupported_reg_types).
-- Behaviour is unchanged: same languages, same defaults, same parsing, same search results.
-- Cost on a live database: document_chunks is rewritten (the stored generated column) and its
-- GIN index rebuilt under an ACCESS EXCLUSIVE lock held for the whole migration; on a large
-- corpus run it in a maintenance window (docs/operations.md, "Loading a large corpus").
-- The fts column is re-added, so it now comes after created_at in `select *` (it is never
-- selected by name-less queries in renum_db).

set local lock_timeout = '10s';
set local statement_timeout = '30min';

-- >>> sql/functions/private.text_search_regconfig.sql
/* why: text_search_config columns are `text` (a check constraint lists the languages), because
   pg_upgrade refuses tables with `regconfig` columns (they store catalog OIDs), which would block
   a Supabase major-version upgrade. This one function maps a language name to the text search
   configuration, for the generated column document_chunks.fts and for hybrid_search's queries,
   so both parse with the same configuration. Immutable, like to_tsvector(regconfig, text), so a
   generated column may call it; the names resolve in pg_catalog only (search_path = ''), and an
   unknown name yields null (the columns' check constraints never let one in). */
create or replace function private.text_search_regconfig(config text)
returns regconfig
language sql
immutable
strict
parallel safe
security invoker
set search_path = ''
as $$
  select case text_search_regconfig.config
           when 'simple' then 'pg_catalog.simple'::pg_catalog.regconfig
           when 'portuguese' then 'pg_catalog.portuguese'::pg_catalog.regconfig
           when 'english' then 'pg_catalog.english'::pg_catalog.regconfig
           when 'spanish' then 'pg_catalog.spanish'::pg_catalog.regconfig
         end
$$;

comment on function private.text_search_regconfig(text) is
  'The text search configuration (regconfig) of a supported language name: simple, portuguese, english or spanish; null for any other name.';

revoke all on function private.text_search_regconfig(text) from public;
grant execute on function private.text_search_regconfig(text) to authenticated, service_role;
-- <<< sql/functions/private.text_search_regconfig.sql

-- Triggers whose `update of` column list or `when` clause names a column block its type change.
drop trigger knowledge_bases_propagate_text_search_config on public.knowledge_bases;
drop trigger document_chunks_set_text_search_config on public.document_chunks;

-- knowledge_bases (small): same default, same languages, as text.
alter table public.knowledge_bases
  -- squawk-ignore ban-drop-constraint
  drop constraint knowledge_bases_text_search_config_chk;
alter table public.knowledge_bases
  -- squawk-ignore ban-drop-default
  alter column text_search_config drop default;
alter table public.knowledge_bases
  -- squawk-ignore changing-column-type
  alter column text_search_config type text using text_search_config::text;
alter table public.knowledge_bases
  alter column text_search_config set default 'portuguese';
alter table public.knowledge_bases
  -- squawk-ignore constraint-missing-not-valid
  add constraint knowledge_bases_text_search_config_chk
    check (text_search_config in ('simple', 'portuguese', 'english', 'spanish'));

-- document_chunks: the generated column depends on the typed column, so it is rebuilt (the GIN
-- index on it goes with it and is rebuilt below, inside this transaction: the table is locked
-- exclusively by the rewrite anyway, so a concurrent build would gain nothing).
alter table public.document_chunks
  -- squawk-ignore ban-drop-column
  drop column fts;
alter table public.document_chunks
  -- squawk-ignore changing-column-type
  alter column text_search_config type text using text_search_config::text;
alter table public.document_chunks
  -- squawk-ignore constraint-missing-not-valid
  add constraint document_chunks_text_search_config_chk
    check (text_search_config in ('simple', 'portuguese', 'english', 'spanish'));
alter table public.document_chunks
  add column fts tsvector
    -- squawk-ignore adding-field-with-default
    generated always as (to_tsvector(private.text_search_regconfig(text_search_config), content))
    stored;
comment on column public.document_chunks.fts is
  'Full-text vector of content in the language text_search_config names (generated through private.text_search_regconfig, GIN-indexed).';
-- squawk-ignore require-concurrent-index-creation
create index document_chunks_fts_idx
  on public.document_chunks
  using gin (fts);

-- >>> sql/functions/private.tg_document_chunks__set_text_search_config.sql
/* why: full-text search must parse a chunk in its knowledge base's language. A chunk inserted
   without text_search_config takes its knowledge base's (the fts column is generated from it);
   bulk ingestion passes it explicitly, so the trigger's `when` clause skips the lookup there.
   security invoker: the lookup reads the parent rows under the writer's own RLS. */
create or replace function private.tg_document_chunks__set_text_search_config()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  select kb.text_search_config
    into new.text_search_config
    from public.documents as d
    join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
    join public.knowledge_bases as kb on kb.client_id = k.client_id and kb.id = k.knowledge_base_id
   where d.client_id = new.client_id
     and d.id = new.document_id;
  -- No visible document: leave the foreign key to report it (23503), not a null here.
  new.text_search_config := coalesce(new.text_search_config, 'simple');
  return new;
end;
$$;

comment on function private.tg_document_chunks__set_text_search_config() is
  'Trigger: fills document_chunks.text_search_config from the chunk''s knowledge base when the writer leaves it out.';

revoke all on function private.tg_document_chunks__set_text_search_config() from public;
-- <<< sql/functions/private.tg_document_chunks__set_text_search_config.sql

create trigger document_chunks_set_text_search_config
  before insert on public.document_chunks
  for each row when (new.text_search_config is null)
  execute function private.tg_document_chunks__set_text_search_config();
create trigger knowledge_bases_propagate_text_search_config
  after update of text_search_config on public.knowledge_bases
  for each row when (old.text_search_config is distinct from new.text_search_config)
  execute function private.tg_knowledge_bases__propagate_text_search_config();

-- >>> sql/functions/public.hybrid_search.sql
/* why: keyword and semantic search fused, for queries where exact words matter (names, codes,
   Portuguese terms an embedding blurs). Two ranked lists over the same tenant scope:
   - full text: document_chunks.fts (a generated tsvector, GIN-indexed) matched against the query
     parsed with websearch_to_tsquery in the text search configuration of every knowledge base in
     scope (Portuguese, English, ... per knowledge base; the parsed queries are OR-ed), ranked by
     ts_rank_cd;
   - semantic: public.search_embeddings (same scoping, validation and tenant rules);
   each list takes the top 2 x match_count (at most 200), and they are fused by reciprocal rank
   fusion: score = full_text_weight / (rrf_k + text_position) + semantic_weight / (rrf_k +
   semantic_position). Unlike the usual recipe, every component is returned: similarity (always
   computed), text_rank, both positions (null when a list did not return the chunk) and score.
   Errors as search_embeddings, plus 22004/22023 for an empty query_text, negative weights, both
   weights zero, or rrf_k < 1. security invoker; volatile because it may record usage. */
create or replace function public.hybrid_search(
  query_text text,
  query_embedding extensions.vector,
  match_count integer default 5,
  collection_ids uuid[] default null,
  knowledge_base_ids uuid[] default null,
  metadata_filter jsonb default null,
  full_text_weight double precision default 1,
  semantic_weight double precision default 1,
  rrf_k integer default 50,
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
  similarity double precision,
  text_rank real,
  semantic_position integer,
  text_position integer,
  score double precision
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
  depth integer;
  config regconfig;
  parsed tsquery;
  query tsquery;
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
  -- Validates the embedding, the filters and the tenant exactly as the semantic search does.
  tenant := private.search_client_id(hybrid_search.client_id);
  doc_ids := private.scoped_document_ids(tenant, collection_ids, knowledge_base_ids);
  depth := least(200, match_count * 2);

  for config in
    select distinct private.text_search_regconfig(kb.text_search_config)
      from public.knowledge_bases as kb
     where kb.client_id = tenant
       and (knowledge_base_ids is null or kb.id = any (knowledge_base_ids))
  loop
    parsed := pg_catalog.websearch_to_tsquery(config, query_text);
    query := case when query is null then parsed else query operator(pg_catalog.||) parsed end;
  end loop;
  if query is not null and pg_catalog.numnode(query) = 0 then
    query := null;  -- only stop words: the text side contributes nothing
  end if;

  with semantic as (
    select s.id, s.similarity, s.pos
      from public.search_embeddings(
             query_embedding, depth, collection_ids, knowledge_base_ids, metadata_filter,
             null, tenant) with ordinality as s (id, document_id, collection_id, knowledge_base_id,
                                                  content, metadata, chunk_index, similarity, pos)
  ),
  lexical as (
    select t.id, t.rank, pg_catalog.row_number() over (order by t.rank desc, t.id) as pos
      from (select c.id, pg_catalog.ts_rank_cd(c.fts, query) as rank
              from public.document_chunks as c
             where query is not null
               and c.client_id = tenant
               and c.fts operator(pg_catalog.@@) query
               and (doc_ids is null or c.document_id = any (doc_ids))
               and (metadata_filter is null or c.metadata @> metadata_filter)
             order by rank desc, c.id
             limit depth) as t
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
           coalesce(r.similarity, 1 - extensions.cosine_distance(c.embedding, query_embedding)),
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

comment on function public.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) is
  'Hybrid search over the caller''s tenant: full text (websearch syntax, each knowledge base''s language) and semantic similarity fused by reciprocal rank fusion. Returns each chunk with similarity, text_rank, semantic_position, text_position and the fused score, best first. Same scoping, validation and tenant rules as search_embeddings; weights >= 0 (not both 0), rrf_k >= 1.';

revoke all on function public.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) from public, anon;
grant execute on function public.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid) to authenticated, service_role;
-- <<< sql/functions/public.hybrid_search.sql

notify pgrst, 'reload schema';
