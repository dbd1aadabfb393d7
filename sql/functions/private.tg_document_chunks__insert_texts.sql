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
