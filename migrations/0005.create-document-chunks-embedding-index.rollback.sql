-- transactional: false
--
-- 0005 rollback: drop the HNSW index without blocking writers.
set lock_timeout = '10s';
set statement_timeout = '5min';
drop index concurrently if exists public.document_chunks_embedding_hnsw_idx;
