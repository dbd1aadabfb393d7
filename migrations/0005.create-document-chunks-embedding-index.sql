-- depends: 0004.create-knowledge
-- transactional: false
--
-- 0005 create-document-chunks-embedding-index
-- what: the HNSW index (cosine distance) on document_chunks.embedding.
-- why: built concurrently, outside a transaction, so applying this to a live database with
-- many chunks never blocks ingestion. m = 16 and ef_construction = 64 are pgvector's defaults,
-- written out so a change is a reviewed migration. Search functions pick between this index and
-- an exact per-tenant scan (retrieval issue).

set lock_timeout = '10s';
set statement_timeout = 0; -- an index build on a large table may take long; it blocks no one

create index concurrently if not exists document_chunks_embedding_hnsw_idx
  on public.document_chunks
  using hnsw (embedding extensions.vector_cosine_ops)
  with (m = 16, ef_construction = 64);
