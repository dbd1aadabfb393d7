-- depends: 0004.create-knowledge
-- transactional: false
--
-- 0008 create-document-chunks-fts-index
-- what: the GIN index on document_chunks.fts used by hybrid_search's full-text side.
-- why: built concurrently so a live database keeps ingesting while it builds.

set lock_timeout = '10s';
set statement_timeout = 0; -- an index build on a large table may take long; it blocks no one

create index concurrently if not exists document_chunks_fts_idx
  on public.document_chunks
  using gin (fts);
