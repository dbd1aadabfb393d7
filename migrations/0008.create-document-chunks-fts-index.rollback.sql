-- transactional: false
--
-- 0008 rollback: drop the full-text index without blocking writers.
set lock_timeout = '10s';
set statement_timeout = '5min';
drop index concurrently if exists public.document_chunks_fts_idx;
