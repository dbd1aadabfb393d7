-- 0004 rollback: drop the knowledge tables, children first, then the version trigger function.
set local lock_timeout = '10s';
set local statement_timeout = '5min';
drop table if exists public.document_usage_stats;
drop table if exists public.document_versions;
drop table if exists public.document_chunks;
drop table if exists public.documents;
drop table if exists public.knowledge_collections;
drop table if exists public.knowledge_bases;
drop function if exists private.tg_knowledge_bases__propagate_text_search_config();
drop function if exists private.tg_document_chunks__set_text_search_config();
drop function if exists private.tg_documents__record_version();
