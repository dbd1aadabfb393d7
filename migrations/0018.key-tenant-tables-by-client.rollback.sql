-- transactional: false
--
-- 0018 rollback: per-tenant indexes and their registry dropped; every tenant table keyed by (id)
-- again, with unique (client_id, id) where 0004/0003 had it, and the foreign keys pointing at it.
-- Same method as the forward migration: concurrent builds, short swaps, deferred validation.

set lock_timeout = '10s';
set statement_timeout = 0;

-- Step 1: build the new unique indexes beside the old ones, without blocking writers.
create unique index concurrently if not exists knowledge_bases_pkey_prev
  on public.knowledge_bases (id);
create unique index concurrently if not exists knowledge_bases_client_id_id_key_prev
  on public.knowledge_bases (client_id, id);
create unique index concurrently if not exists knowledge_collections_pkey_prev
  on public.knowledge_collections (id);
create unique index concurrently if not exists knowledge_collections_client_id_id_key_prev
  on public.knowledge_collections (client_id, id);
create unique index concurrently if not exists documents_pkey_prev
  on public.documents (id);
create unique index concurrently if not exists documents_client_id_id_key_prev
  on public.documents (client_id, id);
create unique index concurrently if not exists document_chunks_pkey_prev
  on public.document_chunks (id);
create unique index concurrently if not exists document_chunks_client_id_id_key_prev
  on public.document_chunks (client_id, id);
create unique index concurrently if not exists agents_pkey_prev
  on public.agents (id);
create unique index concurrently if not exists agents_client_id_id_key_prev
  on public.agents (client_id, id);
create unique index concurrently if not exists agent_executions_pkey_prev
  on public.agent_executions (id);
create unique index concurrently if not exists agent_executions_client_id_id_key_prev
  on public.agent_executions (client_id, id);
create unique index concurrently if not exists api_credentials_pkey_prev
  on public.api_credentials (id);
create unique index concurrently if not exists document_versions_pkey_prev
  on public.document_versions (id);
create unique index concurrently if not exists document_usage_stats_pkey_prev
  on public.document_usage_stats (id);
create unique index concurrently if not exists investigations_pkey_prev
  on public.investigations (id);
create unique index concurrently if not exists embedding_cache_pkey_prev
  on public.embedding_cache (id);

-- Step 2: per table, one short transaction swaps the constraints onto the new indexes
-- (catalog-only: no scan, no rebuild) and re-creates the foreign keys that pointed at the old
-- (client_id, id) index as `not valid` (checked for new rows at once; step 3 checks the old rows).
begin;
set local lock_timeout = '10s';
alter table public.knowledge_collections drop constraint knowledge_collections_knowledge_base_fk;
alter table public.knowledge_bases drop constraint knowledge_bases_id_key;
alter table public.knowledge_bases drop constraint knowledge_bases_pkey;
alter table public.knowledge_bases
  add constraint knowledge_bases_pkey primary key using index knowledge_bases_pkey_prev;
alter table public.knowledge_bases
  add constraint knowledge_bases_client_id_id_key unique using index knowledge_bases_client_id_id_key_prev;
alter table public.knowledge_collections
  add constraint knowledge_collections_knowledge_base_fk
  foreign key (client_id, knowledge_base_id) references public.knowledge_bases(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.documents drop constraint documents_collection_fk;
alter table public.knowledge_collections drop constraint knowledge_collections_id_key;
alter table public.knowledge_collections drop constraint knowledge_collections_pkey;
alter table public.knowledge_collections
  add constraint knowledge_collections_pkey primary key using index knowledge_collections_pkey_prev;
alter table public.knowledge_collections
  add constraint knowledge_collections_client_id_id_key unique using index knowledge_collections_client_id_id_key_prev;
alter table public.documents
  add constraint documents_collection_fk
  foreign key (client_id, collection_id) references public.knowledge_collections(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_chunks drop constraint document_chunks_document_fk;
alter table public.document_usage_stats drop constraint document_usage_stats_document_fk;
alter table public.documents drop constraint documents_id_key;
alter table public.documents drop constraint documents_pkey;
alter table public.documents
  add constraint documents_pkey primary key using index documents_pkey_prev;
alter table public.documents
  add constraint documents_client_id_id_key unique using index documents_client_id_id_key_prev;
alter table public.document_chunks
  add constraint document_chunks_document_fk
  foreign key (client_id, document_id) references public.documents(client_id, id) on delete cascade not valid;
alter table public.document_usage_stats
  add constraint document_usage_stats_document_fk
  foreign key (client_id, document_id) references public.documents(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_usage_stats drop constraint document_usage_stats_chunk_fk;
alter table public.document_chunks drop constraint document_chunks_id_key;
alter table public.document_chunks drop constraint document_chunks_pkey;
alter table public.document_chunks
  add constraint document_chunks_pkey primary key using index document_chunks_pkey_prev;
alter table public.document_chunks
  add constraint document_chunks_client_id_id_key unique using index document_chunks_client_id_id_key_prev;
alter table public.document_usage_stats
  add constraint document_usage_stats_chunk_fk
  foreign key (client_id, chunk_id) references public.document_chunks(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.agent_executions drop constraint agent_executions_agent_fk;
alter table public.document_usage_stats drop constraint document_usage_stats_agent_fk;
alter table public.agents drop constraint agents_id_key;
alter table public.agents drop constraint agents_pkey;
alter table public.agents
  add constraint agents_pkey primary key using index agents_pkey_prev;
alter table public.agents
  add constraint agents_client_id_id_key unique using index agents_client_id_id_key_prev;
alter table public.agent_executions
  add constraint agent_executions_agent_fk
  foreign key (client_id, agent_id) references public.agents(client_id, id) on delete cascade not valid;
alter table public.document_usage_stats
  add constraint document_usage_stats_agent_fk
  foreign key (client_id, agent_id) references public.agents(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_usage_stats drop constraint document_usage_stats_execution_fk;
alter table public.agent_executions drop constraint agent_executions_id_key;
alter table public.agent_executions drop constraint agent_executions_pkey;
alter table public.agent_executions
  add constraint agent_executions_pkey primary key using index agent_executions_pkey_prev;
alter table public.agent_executions
  add constraint agent_executions_client_id_id_key unique using index agent_executions_client_id_id_key_prev;
alter table public.document_usage_stats
  add constraint document_usage_stats_execution_fk
  foreign key (client_id, last_execution_id) references public.agent_executions(client_id, id) on delete set null (last_execution_id) not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.api_credentials drop constraint api_credentials_id_key;
alter table public.api_credentials drop constraint api_credentials_pkey;
alter table public.api_credentials
  add constraint api_credentials_pkey primary key using index api_credentials_pkey_prev;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_versions drop constraint document_versions_id_key;
alter table public.document_versions drop constraint document_versions_pkey;
alter table public.document_versions
  add constraint document_versions_pkey primary key using index document_versions_pkey_prev;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_usage_stats drop constraint document_usage_stats_id_key;
alter table public.document_usage_stats drop constraint document_usage_stats_pkey;
alter table public.document_usage_stats
  add constraint document_usage_stats_pkey primary key using index document_usage_stats_pkey_prev;
commit;

begin;
set local lock_timeout = '10s';
alter table public.investigations drop constraint investigations_id_key;
alter table public.investigations drop constraint investigations_pkey;
alter table public.investigations
  add constraint investigations_pkey primary key using index investigations_pkey_prev;
commit;

begin;
set local lock_timeout = '10s';
alter table public.embedding_cache drop constraint embedding_cache_id_key;
alter table public.embedding_cache drop constraint embedding_cache_pkey;
alter table public.embedding_cache
  add constraint embedding_cache_pkey primary key using index embedding_cache_pkey_prev;
commit;

-- Step 3: check the existing rows against the re-created foreign keys (share update exclusive:
-- reads and writes go on).
alter table public.knowledge_collections validate constraint knowledge_collections_knowledge_base_fk;
alter table public.documents validate constraint documents_collection_fk;
alter table public.document_chunks validate constraint document_chunks_document_fk;
alter table public.document_usage_stats validate constraint document_usage_stats_document_fk;
alter table public.document_usage_stats validate constraint document_usage_stats_chunk_fk;
alter table public.agent_executions validate constraint agent_executions_agent_fk;
alter table public.document_usage_stats validate constraint document_usage_stats_agent_fk;
alter table public.document_usage_stats validate constraint document_usage_stats_execution_fk;
notify pgrst, 'reload schema';
