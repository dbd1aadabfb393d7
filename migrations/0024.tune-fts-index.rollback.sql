-- 0024 tune-fts-index (rollback): the GIN index on document_chunks.fts keeps a pending list
-- again (PostgreSQL's default).

set local lock_timeout = '10s';
set local statement_timeout = '1min';

alter index public.document_chunks_fts_idx reset (fastupdate);
