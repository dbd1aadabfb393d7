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
