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
