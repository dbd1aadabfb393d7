-- 0007 rollback: drop the retrieval API, its helpers and the embedding cache.
set local lock_timeout = '10s';
set local statement_timeout = '5min';
drop function if exists public.most_used_documents(integer, uuid, uuid);
drop function if exists public.hybrid_search(text, extensions.vector, integer, uuid[], uuid[], jsonb, double precision, double precision, integer, uuid, uuid, uuid);
drop function if exists public.search_embeddings(extensions.vector, integer, uuid[], uuid[], jsonb, double precision, uuid, uuid, uuid);
drop function if exists public.record_chunk_usage(uuid, uuid[], uuid, uuid);
drop function if exists private.record_chunk_usage(uuid, uuid, uuid[], uuid);
drop function if exists private.nearest_chunks_hnsw(uuid, extensions.vector, integer, uuid[], jsonb);
drop function if exists private.scoped_document_ids(uuid, uuid[], uuid[]);
drop function if exists private.search_client_id(uuid);
drop table if exists public.embedding_cache;
