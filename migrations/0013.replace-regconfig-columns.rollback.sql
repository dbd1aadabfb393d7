-- 0013 rollback: text_search_config back to regconfig, fts generated from it, the previous
-- trigger function; private.text_search_regconfig dropped.
-- Rewrites document_chunks and rebuilds its GIN index, like the forward migration. fts is re-added
-- last, so it follows created_at (the column order of 0004 cannot be restored without rewriting
-- created_at as well).

set local lock_timeout = '10s';
set local statement_timeout = '30min';

drop trigger knowledge_bases_propagate_text_search_config on public.knowledge_bases;
drop trigger document_chunks_set_text_search_config on public.document_chunks;

alter table public.document_chunks
  -- squawk-ignore ban-drop-column
  drop column fts;
alter table public.document_chunks
  -- squawk-ignore ban-drop-constraint
  drop constraint document_chunks_text_search_config_language_chk;
alter table public.document_chunks
  -- squawk-ignore changing-column-type
  alter column text_search_config type regconfig
    using private.text_search_regconfig(text_search_config);
alter table public.document_chunks
  -- squawk-ignore adding-field-with-default
  add column fts tsvector generated always as (to_tsvector(text_search_config, content)) stored;
comment on column public.document_chunks.fts is
  'Full-text vector of content in text_search_config (generated, GIN-indexed by 0008).';
-- squawk-ignore require-concurrent-index-creation
create index document_chunks_fts_idx
  on public.document_chunks
  using gin (fts);

alter table public.knowledge_bases
  -- squawk-ignore ban-drop-constraint
  drop constraint knowledge_bases_text_search_config_chk;
alter table public.knowledge_bases
  -- squawk-ignore ban-drop-default
  alter column text_search_config drop default;
alter table public.knowledge_bases
  -- squawk-ignore changing-column-type
  alter column text_search_config type regconfig
    using private.text_search_regconfig(text_search_config);
alter table public.knowledge_bases
  alter column text_search_config set default 'portuguese';
alter table public.knowledge_bases
  -- squawk-ignore constraint-missing-not-valid
  add constraint knowledge_bases_text_search_config_chk
    check (text_search_config = any ('{simple,portuguese,english,spanish}'::regconfig[]));

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
  new.text_search_config := coalesce(new.text_search_config, 'simple'::regconfig);
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


drop function private.text_search_regconfig(text);

notify pgrst, 'reload schema';
