-- depends: 0023.sharpen-hybrid-search
--
-- 0024 tune-fts-index
-- what: the GIN index on document_chunks.fts stops keeping a pending list (fastupdate = off);
--       the entries already pending are merged into the index first.
-- why: issue 12. With fastupdate on (PostgreSQL's default), rows inserted since the last
--       vacuum wait in a pending list of up to gin_pending_list_limit (4 MB) that every search
--       of the index reads whole: after a live ingestion of the benchmark's 400k table, a text
--       search for a word in no chunk cost 1.4 ms (263 pages) instead of 0.06 ms, on every
--       hybrid_search of a rare word above the exact limit, until autovacuum came by. An
--       insert now updates the index at once: measured 0.70 ms per 250-lexeme chunk instead
--       of 0.36 ms, against the ~6-10 ms each chunk already costs the HNSW index; and no
--       inserting backend pays a whole list's merge at once. docs/operations.md.
--       The merge takes no lock that blocks searches or writes; the ALTER takes the index's
--       access exclusive lock for an instant (lock_timeout 10s).

set local lock_timeout = '10s';
set local statement_timeout = '5min';

select pg_catalog.gin_clean_pending_list('public.document_chunks_fts_idx'::pg_catalog.regclass);

alter index public.document_chunks_fts_idx set (fastupdate = off);
