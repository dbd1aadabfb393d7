/* why: when a knowledge base changes language, its chunks must be re-parsed in the new one
   (their fts column is generated from text_search_config), or full-text search would mix
   languages silently. security definer: API users may not write chunks' text_search_config
   directly; the function updates only the chunks of the knowledge base being changed, in its
   own client. */
create or replace function private.tg_knowledge_bases__propagate_text_search_config()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  update public.document_chunks as c
     set text_search_config = new.text_search_config
    from public.documents as d
    join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
   where k.client_id = new.client_id
     and k.knowledge_base_id = new.id
     and c.client_id = d.client_id
     and c.document_id = d.id
     and c.text_search_config is distinct from new.text_search_config;
  return null;
end;
$$;

comment on function private.tg_knowledge_bases__propagate_text_search_config() is
  'Trigger (after update of text_search_config on knowledge_bases): re-parses the knowledge base''s chunks in the new language.';

revoke all on function private.tg_knowledge_bases__propagate_text_search_config() from public;
