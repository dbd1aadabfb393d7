-- depends: 0012.create-storage-policies
--
-- 0013 replace-regconfig-columns
-- what: knowledge_bases.text_search_config and document_chunks.text_search_config become `text`
-- with a check constraint on the supported languages (simple, portuguese, english, spanish);
-- private.text_search_regconfig(text) maps a name to its regconfig for the generated column
-- document_chunks.fts. The fts column and its GIN index are rebuilt. hybrid_search (redefined by
-- 0014) reads the name into a regconfig variable, an exact conversion for these four names.
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
   configuration for the generated column document_chunks.fts and for any query that must parse
   text the way a knowledge base does. Immutable, like to_tsvector(regconfig, text), so a
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
  add constraint document_chunks_text_search_config_language_chk
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


notify pgrst, 'reload schema';
