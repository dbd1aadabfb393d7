-- depends: 0012.create-storage-policies
-- transactional: false
--
-- 0018 key-tenant-tables-by-client
-- what: 1. every tenant table's primary key becomes (client_id, id); `id` stays unique on its own
--          (constraint <table>_id_key) so PostgREST filters, `on_conflict=id` upserts and the
--          one-to-one relationship detection keep working. users keeps its key: it is a reference
--          table (client_id is nullable there), see docs/scale-out.md.
--       2. per-tenant HNSW indexes for retrieval: the registry private.tenant_chunk_indexes and the
--          functions that route a search to the exact scan, the tenant's own index or the shared
--          index (docs/retrieval.md).
-- why: a primary key that carries the distribution column is what declarative partitioning by
-- client_id and Citus distribution by client_id both require (docs/scale-out.md); and a filtered
-- walk of the one shared HNSW graph loses neighbours for tenants holding a small share of the
-- table (issue 12), which a graph of the tenant's own rows does not.
-- Safe on a live database: every new index is built concurrently beside the old one; each swap is
-- one short transaction (lock_timeout 10s) that only re-points catalog entries (`using index`:
-- no scan, no rebuild); the foreign keys that pointed at the old (client_id, id) indexes are
-- re-created `not valid` in that transaction and validated afterwards without blocking writes.
-- Resumable: `if not exists` on every build; after a failed concurrent build drop the invalid
-- `*_next` index and apply again.

set lock_timeout = '10s';
set statement_timeout = 0; -- index builds on large tables may take long; they block no one

-- Step 1: build the new unique indexes beside the old ones, without blocking writers.
create unique index concurrently if not exists knowledge_bases_pkey_next
  on public.knowledge_bases (client_id, id);
create unique index concurrently if not exists knowledge_bases_id_key_next
  on public.knowledge_bases (id);
create unique index concurrently if not exists knowledge_collections_pkey_next
  on public.knowledge_collections (client_id, id);
create unique index concurrently if not exists knowledge_collections_id_key_next
  on public.knowledge_collections (id);
create unique index concurrently if not exists documents_pkey_next
  on public.documents (client_id, id);
create unique index concurrently if not exists documents_id_key_next
  on public.documents (id);
create unique index concurrently if not exists document_chunks_pkey_next
  on public.document_chunks (client_id, id);
create unique index concurrently if not exists document_chunks_id_key_next
  on public.document_chunks (id);
create unique index concurrently if not exists agents_pkey_next
  on public.agents (client_id, id);
create unique index concurrently if not exists agents_id_key_next
  on public.agents (id);
create unique index concurrently if not exists agent_executions_pkey_next
  on public.agent_executions (client_id, id);
create unique index concurrently if not exists agent_executions_id_key_next
  on public.agent_executions (id);
create unique index concurrently if not exists api_credentials_pkey_next
  on public.api_credentials (client_id, id);
create unique index concurrently if not exists api_credentials_id_key_next
  on public.api_credentials (id);
create unique index concurrently if not exists document_versions_pkey_next
  on public.document_versions (client_id, id);
create unique index concurrently if not exists document_versions_id_key_next
  on public.document_versions (id);
create unique index concurrently if not exists document_usage_stats_pkey_next
  on public.document_usage_stats (client_id, id);
create unique index concurrently if not exists document_usage_stats_id_key_next
  on public.document_usage_stats (id);
create unique index concurrently if not exists investigations_pkey_next
  on public.investigations (client_id, id);
create unique index concurrently if not exists investigations_id_key_next
  on public.investigations (id);
create unique index concurrently if not exists embedding_cache_pkey_next
  on public.embedding_cache (client_id, id);
create unique index concurrently if not exists embedding_cache_id_key_next
  on public.embedding_cache (id);

-- Step 2: per table, one short transaction swaps the constraints onto the new indexes
-- (catalog-only: no scan, no rebuild) and re-creates the foreign keys that pointed at the old
-- (client_id, id) index as `not valid` (checked for new rows at once; step 3 checks the old rows).
begin;
set local lock_timeout = '10s';
alter table public.knowledge_collections drop constraint knowledge_collections_knowledge_base_fk;
alter table public.knowledge_bases drop constraint knowledge_bases_client_id_id_key;
alter table public.knowledge_bases drop constraint knowledge_bases_pkey;
alter table public.knowledge_bases
  add constraint knowledge_bases_pkey primary key using index knowledge_bases_pkey_next;
alter table public.knowledge_bases
  add constraint knowledge_bases_id_key unique using index knowledge_bases_id_key_next;
alter table public.knowledge_collections
  add constraint knowledge_collections_knowledge_base_fk
  foreign key (client_id, knowledge_base_id) references public.knowledge_bases(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.documents drop constraint documents_collection_fk;
alter table public.knowledge_collections drop constraint knowledge_collections_client_id_id_key;
alter table public.knowledge_collections drop constraint knowledge_collections_pkey;
alter table public.knowledge_collections
  add constraint knowledge_collections_pkey primary key using index knowledge_collections_pkey_next;
alter table public.knowledge_collections
  add constraint knowledge_collections_id_key unique using index knowledge_collections_id_key_next;
alter table public.documents
  add constraint documents_collection_fk
  foreign key (client_id, collection_id) references public.knowledge_collections(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_chunks drop constraint document_chunks_document_fk;
alter table public.document_usage_stats drop constraint document_usage_stats_document_fk;
alter table public.documents drop constraint documents_client_id_id_key;
alter table public.documents drop constraint documents_pkey;
alter table public.documents
  add constraint documents_pkey primary key using index documents_pkey_next;
alter table public.documents
  add constraint documents_id_key unique using index documents_id_key_next;
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
alter table public.document_chunks drop constraint document_chunks_client_id_id_key;
alter table public.document_chunks drop constraint document_chunks_pkey;
alter table public.document_chunks
  add constraint document_chunks_pkey primary key using index document_chunks_pkey_next;
alter table public.document_chunks
  add constraint document_chunks_id_key unique using index document_chunks_id_key_next;
alter table public.document_usage_stats
  add constraint document_usage_stats_chunk_fk
  foreign key (client_id, chunk_id) references public.document_chunks(client_id, id) on delete cascade not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.agent_executions drop constraint agent_executions_agent_fk;
alter table public.document_usage_stats drop constraint document_usage_stats_agent_fk;
alter table public.agents drop constraint agents_client_id_id_key;
alter table public.agents drop constraint agents_pkey;
alter table public.agents
  add constraint agents_pkey primary key using index agents_pkey_next;
alter table public.agents
  add constraint agents_id_key unique using index agents_id_key_next;
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
alter table public.agent_executions drop constraint agent_executions_client_id_id_key;
alter table public.agent_executions drop constraint agent_executions_pkey;
alter table public.agent_executions
  add constraint agent_executions_pkey primary key using index agent_executions_pkey_next;
alter table public.agent_executions
  add constraint agent_executions_id_key unique using index agent_executions_id_key_next;
alter table public.document_usage_stats
  add constraint document_usage_stats_execution_fk
  foreign key (client_id, last_execution_id) references public.agent_executions(client_id, id) on delete set null (last_execution_id) not valid;
commit;

begin;
set local lock_timeout = '10s';
alter table public.api_credentials drop constraint api_credentials_pkey;
alter table public.api_credentials
  add constraint api_credentials_pkey primary key using index api_credentials_pkey_next;
alter table public.api_credentials
  add constraint api_credentials_id_key unique using index api_credentials_id_key_next;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_versions drop constraint document_versions_pkey;
alter table public.document_versions
  add constraint document_versions_pkey primary key using index document_versions_pkey_next;
alter table public.document_versions
  add constraint document_versions_id_key unique using index document_versions_id_key_next;
commit;

begin;
set local lock_timeout = '10s';
alter table public.document_usage_stats drop constraint document_usage_stats_pkey;
alter table public.document_usage_stats
  add constraint document_usage_stats_pkey primary key using index document_usage_stats_pkey_next;
alter table public.document_usage_stats
  add constraint document_usage_stats_id_key unique using index document_usage_stats_id_key_next;
commit;

begin;
set local lock_timeout = '10s';
alter table public.investigations drop constraint investigations_pkey;
alter table public.investigations
  add constraint investigations_pkey primary key using index investigations_pkey_next;
alter table public.investigations
  add constraint investigations_id_key unique using index investigations_id_key_next;
commit;

begin;
set local lock_timeout = '10s';
alter table public.embedding_cache drop constraint embedding_cache_pkey;
alter table public.embedding_cache
  add constraint embedding_cache_pkey primary key using index embedding_cache_pkey_next;
alter table public.embedding_cache
  add constraint embedding_cache_id_key unique using index embedding_cache_id_key_next;
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
