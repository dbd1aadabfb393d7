-- 0007 rollback: drop the retrieval API, its helpers and triggers, the embedding cache, and the
-- text search columns.
set local lock_timeout = '10s';
set local statement_timeout = '5min';
drop function if exists public.most_used_documents(integer, uuid, uuid);
drop function if exists public.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid);
drop function if exists public.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid);
drop function if exists public.record_chunk_usage(uuid, uuid[], uuid, uuid);
drop function if exists private.record_chunk_usage(uuid, uuid, uuid[], uuid);
drop function if exists private.scoped_document_ids(uuid, uuid[], uuid[]);
drop function if exists private.search_client_id(uuid);
drop trigger if exists knowledge_bases_propagate_text_search_config on public.knowledge_bases;
drop trigger if exists document_chunks_set_text_search_config on public.document_chunks;
drop function if exists private.tg_knowledge_bases__propagate_text_search_config();
drop function if exists private.tg_document_chunks__set_text_search_config();
drop table if exists public.embedding_cache;
alter table public.document_chunks drop column if exists fts;
alter table public.document_chunks drop column if exists text_search_config;
alter table public.knowledge_bases drop column if exists text_search_config;
