-- depends: 0003.create-agents
--
-- 0004 create-knowledge
-- what: the knowledge model of seed 000: knowledge_bases > knowledge_collections > documents >
-- document_chunks (text + 1536-d embedding + full-text vector in the knowledge base's language),
-- document_versions (history written by trigger) and
-- document_usage_stats (which agent used which chunk, written by functions).
-- why: each table carries client_id and every foreign key between them includes it
-- ((client_id, parent_id) references parent (client_id, id)), so a chunk can never hang under
-- another tenant's document, whoever inserts it; the leading client_id of each unique key also
-- serves the tenant predicate of every policy. The HNSW index on embeddings is built
-- concurrently by 0005.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

create table public.knowledge_bases (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id()
    references public.clients (id) on delete cascade,
  name text not null,
  description text,
  text_search_config regconfig not null default 'portuguese',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint knowledge_bases_client_id_id_key unique (client_id, id),
  constraint knowledge_bases_client_id_name_key unique (client_id, name),
  constraint knowledge_bases_name_chk check (length(btrim(name)) between 1 and 200),
  constraint knowledge_bases_text_search_config_chk
    check (text_search_config = any ('{simple,portuguese,english,spanish}'::regconfig[]))
);
comment on table public.knowledge_bases is 'Knowledge bases of a tenant. Viewers read; members and admins write.';
comment on column public.knowledge_bases.text_search_config is
  'Text search configuration of the knowledge base''s chunks: portuguese (default), english, spanish or simple. Changing it re-parses the chunks.';

create table public.knowledge_collections (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id()
    references public.clients (id) on delete cascade,
  knowledge_base_id uuid not null,
  name text not null,
  description text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint knowledge_collections_client_id_id_key unique (client_id, id),
  constraint knowledge_collections_name_key unique (client_id, knowledge_base_id, name),
  constraint knowledge_collections_knowledge_base_fk foreign key (client_id, knowledge_base_id)
    references public.knowledge_bases (client_id, id) on delete cascade,
  constraint knowledge_collections_name_chk check (length(btrim(name)) between 1 and 200)
);
comment on table public.knowledge_collections is 'Collections inside a knowledge base. Viewers read; members and admins write.';

create table public.documents (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id()
    references public.clients (id) on delete cascade,
  collection_id uuid not null,
  name text not null,
  source_type text not null default 'upload',
  source_url text,
  file_type text,
  file_size bigint,
  status text not null default 'pending',
  error text,
  metadata jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint documents_client_id_id_key unique (client_id, id),
  constraint documents_collection_fk foreign key (client_id, collection_id)
    references public.knowledge_collections (client_id, id) on delete cascade,
  constraint documents_name_chk check (length(btrim(name)) between 1 and 500),
  constraint documents_source_type_chk check (source_type in ('upload', 'url', 'text', 'storage', 'api')),
  constraint documents_status_chk check (status in ('pending', 'processing', 'ready', 'failed')),
  constraint documents_file_size_chk check (file_size is null or file_size >= 0),
  constraint documents_metadata_chk check (jsonb_typeof(metadata) = 'object')
);
comment on table public.documents is
  'Documents of a collection. Viewers read; members and admins write. Every insert, update and delete is recorded in document_versions by trigger.';
comment on column public.documents.status is 'pending | processing | ready | failed (error holds the reason).';
comment on column public.documents.source_type is 'upload | url | text | storage | api.';

create index documents_collection_idx on public.documents (client_id, collection_id);

create table public.document_chunks (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id()
    references public.clients (id) on delete cascade,
  document_id uuid not null,
  content text not null,
  chunk_index integer not null,
  metadata jsonb not null default '{}'::jsonb,
  embedding_id text,
  embedding extensions.vector(1536),
  text_search_config regconfig not null,
  fts tsvector generated always as (to_tsvector(text_search_config, content)) stored,
  created_at timestamptz not null default now(),
  constraint document_chunks_client_id_id_key unique (client_id, id),
  constraint document_chunks_document_chunk_index_key unique (client_id, document_id, chunk_index),
  constraint document_chunks_document_fk foreign key (client_id, document_id)
    references public.documents (client_id, id) on delete cascade,
  constraint document_chunks_chunk_index_chk check (chunk_index >= 0),
  constraint document_chunks_metadata_chk check (jsonb_typeof(metadata) = 'object')
);
comment on table public.document_chunks is
  'Chunks of a document with their embedding (vector(1536): OpenAI text-embedding-3-small / ada-002; other models must produce 1536 dimensions). Viewers read; members and admins write.';
comment on column public.document_chunks.embedding is 'Embedding, 1536 dimensions, compared by cosine distance (HNSW index).';
comment on column public.document_chunks.text_search_config is
  'Language the chunk is parsed in; defaults to its knowledge base''s.';
comment on column public.document_chunks.fts is
  'Full-text vector of content in text_search_config (generated, GIN-indexed by 0008).';

create table public.document_versions (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  document_id uuid not null,
  version_number integer not null,
  change_type text not null,
  changed_by uuid references auth.users (id) on delete set null,
  change_description text,
  snapshot jsonb not null,
  created_at timestamptz not null default now(),
  constraint document_versions_number_key unique (client_id, document_id, version_number),
  constraint document_versions_change_type_chk check (change_type in ('created', 'updated', 'deleted')),
  constraint document_versions_version_number_chk check (version_number >= 1)
);
comment on table public.document_versions is
  'History of documents, written only by trigger (insert, update, delete). document_id has no foreign key on purpose: history outlives a deleted document. Read by the tenant.';
comment on column public.document_versions.snapshot is 'The document row as it was after the change (before it, for deletes).';

create index document_versions_changed_by_idx on public.document_versions (changed_by);

create table public.document_usage_stats (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  document_id uuid not null,
  chunk_id uuid not null,
  agent_id uuid not null,
  last_execution_id uuid,
  usage_count bigint not null default 1,
  first_used_at timestamptz not null default now(),
  last_used_at timestamptz not null default now(),
  constraint document_usage_stats_chunk_agent_key unique (client_id, chunk_id, agent_id),
  constraint document_usage_stats_document_fk foreign key (client_id, document_id)
    references public.documents (client_id, id) on delete cascade,
  constraint document_usage_stats_chunk_fk foreign key (client_id, chunk_id)
    references public.document_chunks (client_id, id) on delete cascade,
  constraint document_usage_stats_agent_fk foreign key (client_id, agent_id)
    references public.agents (client_id, id) on delete cascade,
  constraint document_usage_stats_execution_fk foreign key (client_id, last_execution_id)
    references public.agent_executions (client_id, id) on delete set null (last_execution_id),
  constraint document_usage_stats_usage_count_chk check (usage_count >= 0),
  constraint document_usage_stats_used_at_chk check (last_used_at >= first_used_at)
);
comment on table public.document_usage_stats is
  'How often each agent used each chunk (one row per client, chunk and agent). Written only by functions; read by the tenant.';

create index document_usage_stats_document_idx on public.document_usage_stats (client_id, document_id);
create index document_usage_stats_agent_idx on public.document_usage_stats (client_id, agent_id);
create index document_usage_stats_execution_idx on public.document_usage_stats (client_id, last_execution_id);

-- >>> sql/functions/private.tg_documents__record_version.sql
/* why: seed 000 keeps a document history (document_versions) that no caller may forge or skip,
   so the database writes it: one row per insert, real update and delete of public.documents,
   numbered 1, 2, 3... per document, with the caller (auth.uid(), null for the backend), the
   columns that changed and a snapshot of the row. Version numbers cannot collide: update and
   delete hold the document's row lock, and (document_id, version_number) is unique as a backstop.
   An update that changes nothing but updated_at records nothing, and deleting a whole client
   leaves no history behind.
   security definer: API users may read versions but never write them (no grant, no policy);
   this function writes exactly one row per changed document, owned by that document's tenant. */
create or replace function private.tg_documents__record_version()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  doc public.documents := case when tg_op = 'DELETE' then old else new end;
  changed text;
  next_version integer;
begin
  -- A document deleted because its whole client is being deleted leaves no history: the
  -- client's versions are being deleted by the same statement.
  if tg_op = 'DELETE' and not exists (select from public.clients as c where c.id = old.client_id) then
    return null;
  end if;

  if tg_op = 'UPDATE' then
    select pg_catalog.string_agg(n.key, ', ' order by n.key)
      into changed
      from pg_catalog.jsonb_each(pg_catalog.to_jsonb(new)) as n
      join pg_catalog.jsonb_each(pg_catalog.to_jsonb(old)) as o using (key)
     where n.value is distinct from o.value
       and n.key <> 'updated_at';
    if changed is null then
      return null;
    end if;
  end if;

  select coalesce(max(v.version_number), 0) + 1
    into next_version
    from public.document_versions as v
   where v.client_id = doc.client_id
     and v.document_id = doc.id;

  insert into public.document_versions
    (client_id, document_id, version_number, change_type, changed_by, change_description, snapshot)
  values (
    doc.client_id,
    doc.id,
    next_version,
    case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end,
    auth.uid(),
    case tg_op when 'UPDATE' then 'changed: ' || changed end,
    pg_catalog.to_jsonb(doc)
  );
  return null;
end;
$$;

comment on function private.tg_documents__record_version() is
  'Trigger (after insert/update/delete on public.documents): appends a document_versions row with the next version number, the caller and the changed columns.';

revoke all on function private.tg_documents__record_version() from public;
-- <<< sql/functions/private.tg_documents__record_version.sql

-- >>> sql/functions/private.tg_document_chunks__set_text_search_config.sql
/* why: full-text search must parse a chunk in its knowledge base's language. A chunk inserted
   without text_search_config takes its knowledge base's (the fts column is generated from it);
   bulk ingestion passes it explicitly, so the trigger's `when` clause skips the lookup there.
   security invoker: the lookup reads the parent rows under the writer's own RLS. */
create or replace function private.tg_document_chunks__set_text_search_config()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  select kb.text_search_config
    into new.text_search_config
    from public.documents as d
    join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
    join public.knowledge_bases as kb on kb.client_id = k.client_id and kb.id = k.knowledge_base_id
   where d.client_id = new.client_id
     and d.id = new.document_id;
  -- No visible document: leave the foreign key to report it (23503), not a null here.
  new.text_search_config := coalesce(new.text_search_config, 'simple'::regconfig);
  return new;
end;
$$;

comment on function private.tg_document_chunks__set_text_search_config() is
  'Trigger: fills document_chunks.text_search_config from the chunk''s knowledge base when the writer leaves it out.';

revoke all on function private.tg_document_chunks__set_text_search_config() from public;
-- <<< sql/functions/private.tg_document_chunks__set_text_search_config.sql

-- >>> sql/functions/private.tg_knowledge_bases__propagate_text_search_config.sql
/* why: when a knowledge base changes language, its chunks must be re-parsed in the new one
   (their fts column is generated from text_search_config), or full-text search would mix
   languages silently. security definer: API users may not write chunks' text_search_config
   directly; the function updates only the chunks of the knowledge base being changed, in its
   own client. */
create or replace function private.tg_knowledge_bases__propagate_text_search_config()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  update public.document_chunks as c
     set text_search_config = new.text_search_config
    from public.documents as d
    join public.knowledge_collections as k on k.client_id = d.client_id and k.id = d.collection_id
   where k.client_id = new.client_id
     and k.knowledge_base_id = new.id
     and c.client_id = d.client_id
     and c.document_id = d.id
     and c.text_search_config is distinct from new.text_search_config;
  return null;
end;
$$;

comment on function private.tg_knowledge_bases__propagate_text_search_config() is
  'Trigger (after update of text_search_config on knowledge_bases): re-parses the knowledge base''s chunks in the new language.';

revoke all on function private.tg_knowledge_bases__propagate_text_search_config() from public;
-- <<< sql/functions/private.tg_knowledge_bases__propagate_text_search_config.sql

create trigger document_chunks_set_text_search_config
  before insert on public.document_chunks
  for each row when (new.text_search_config is null)
  execute function private.tg_document_chunks__set_text_search_config();

create trigger knowledge_bases_propagate_text_search_config
  after update of text_search_config on public.knowledge_bases
  for each row when (old.text_search_config is distinct from new.text_search_config)
  execute function private.tg_knowledge_bases__propagate_text_search_config();

create trigger knowledge_bases_set_updated_at
  before update on public.knowledge_bases
  for each row execute function private.tg__set_updated_at();
create trigger knowledge_bases_forbid_client_id_change
  before update of client_id on public.knowledge_bases
  for each row execute function private.tg__forbid_client_id_change();
create trigger knowledge_collections_set_updated_at
  before update on public.knowledge_collections
  for each row execute function private.tg__set_updated_at();
create trigger knowledge_collections_forbid_client_id_change
  before update of client_id on public.knowledge_collections
  for each row execute function private.tg__forbid_client_id_change();
create trigger documents_set_updated_at
  before update on public.documents
  for each row execute function private.tg__set_updated_at();
create trigger documents_forbid_client_id_change
  before update of client_id on public.documents
  for each row execute function private.tg__forbid_client_id_change();
create trigger documents_record_version
  after insert or update or delete on public.documents
  for each row execute function private.tg_documents__record_version();
create trigger document_chunks_forbid_client_id_change
  before update of client_id on public.document_chunks
  for each row execute function private.tg__forbid_client_id_change();
create trigger document_versions_forbid_client_id_change
  before update of client_id on public.document_versions
  for each row execute function private.tg__forbid_client_id_change();
create trigger document_usage_stats_forbid_client_id_change
  before update of client_id on public.document_usage_stats
  for each row execute function private.tg__forbid_client_id_change();

revoke all on table public.knowledge_bases from public, anon, authenticated, service_role;
grant select on table public.knowledge_bases to authenticated;
grant insert (client_id, name, description, text_search_config)
  on table public.knowledge_bases to authenticated;
grant update (name, description, text_search_config) on table public.knowledge_bases to authenticated;
grant delete on table public.knowledge_bases to authenticated;
grant select, insert, update, delete on table public.knowledge_bases to service_role;

revoke all on table public.knowledge_collections from public, anon, authenticated, service_role;
grant select on table public.knowledge_collections to authenticated;
grant insert (client_id, knowledge_base_id, name, description)
  on table public.knowledge_collections to authenticated;
grant update (knowledge_base_id, name, description) on table public.knowledge_collections to authenticated;
grant delete on table public.knowledge_collections to authenticated;
grant select, insert, update, delete on table public.knowledge_collections to service_role;

revoke all on table public.documents from public, anon, authenticated, service_role;
grant select on table public.documents to authenticated;
grant insert (client_id, collection_id, name, source_type, source_url, file_type, file_size, status, error, metadata)
  on table public.documents to authenticated;
grant update (collection_id, name, source_type, source_url, file_type, file_size, status, error, metadata)
  on table public.documents to authenticated;
grant delete on table public.documents to authenticated;
grant select, insert, update, delete on table public.documents to service_role;

revoke all on table public.document_chunks from public, anon, authenticated, service_role;
grant select on table public.document_chunks to authenticated;
grant insert (client_id, document_id, content, chunk_index, metadata, embedding_id, embedding,
              text_search_config)
  on table public.document_chunks to authenticated;
grant update (content, chunk_index, metadata, embedding_id, embedding)
  on table public.document_chunks to authenticated;
grant delete on table public.document_chunks to authenticated;
grant select, insert, update, delete on table public.document_chunks to service_role;

revoke all on table public.document_versions from public, anon, authenticated, service_role;
grant select on table public.document_versions to authenticated;
grant select on table public.document_versions to service_role;

revoke all on table public.document_usage_stats from public, anon, authenticated, service_role;
grant select on table public.document_usage_stats to authenticated;
grant select, insert, update, delete on table public.document_usage_stats to service_role;

-- >>> sql/policies/tenant_table.sql.j2 table=knowledge_bases select=viewer insert=member update=member delete=member
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for knowledge_bases: select=viewer, insert=member, update=member, delete=member. */
alter table public.knowledge_bases enable row level security;
alter table public.knowledge_bases force row level security;
create policy knowledge_bases_select on public.knowledge_bases
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));
create policy knowledge_bases_insert on public.knowledge_bases
  for insert to authenticated
  with check (client_id = (select private.current_client_id('member')));
create policy knowledge_bases_update on public.knowledge_bases
  for update to authenticated
  using (client_id = (select private.current_client_id('member')))
  with check (client_id = (select private.current_client_id('member')));
create policy knowledge_bases_delete on public.knowledge_bases
  for delete to authenticated
  using (client_id = (select private.current_client_id('member')));
-- <<< sql/policies/tenant_table.sql.j2 table=knowledge_bases select=viewer insert=member update=member delete=member

-- >>> sql/policies/tenant_table.sql.j2 table=knowledge_collections select=viewer insert=member update=member delete=member
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for knowledge_collections: select=viewer, insert=member, update=member, delete=member. */
alter table public.knowledge_collections enable row level security;
alter table public.knowledge_collections force row level security;
create policy knowledge_collections_select on public.knowledge_collections
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));
create policy knowledge_collections_insert on public.knowledge_collections
  for insert to authenticated
  with check (client_id = (select private.current_client_id('member')));
create policy knowledge_collections_update on public.knowledge_collections
  for update to authenticated
  using (client_id = (select private.current_client_id('member')))
  with check (client_id = (select private.current_client_id('member')));
create policy knowledge_collections_delete on public.knowledge_collections
  for delete to authenticated
  using (client_id = (select private.current_client_id('member')));
-- <<< sql/policies/tenant_table.sql.j2 table=knowledge_collections select=viewer insert=member update=member delete=member

-- >>> sql/policies/tenant_table.sql.j2 table=documents select=viewer insert=member update=member delete=member
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for documents: select=viewer, insert=member, update=member, delete=member. */
alter table public.documents enable row level security;
alter table public.documents force row level security;
create policy documents_select on public.documents
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));
create policy documents_insert on public.documents
  for insert to authenticated
  with check (client_id = (select private.current_client_id('member')));
create policy documents_update on public.documents
  for update to authenticated
  using (client_id = (select private.current_client_id('member')))
  with check (client_id = (select private.current_client_id('member')));
create policy documents_delete on public.documents
  for delete to authenticated
  using (client_id = (select private.current_client_id('member')));
-- <<< sql/policies/tenant_table.sql.j2 table=documents select=viewer insert=member update=member delete=member

-- >>> sql/policies/tenant_table.sql.j2 table=document_chunks select=viewer insert=member update=member delete=member
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for document_chunks: select=viewer, insert=member, update=member, delete=member. */
alter table public.document_chunks enable row level security;
alter table public.document_chunks force row level security;
create policy document_chunks_select on public.document_chunks
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));
create policy document_chunks_insert on public.document_chunks
  for insert to authenticated
  with check (client_id = (select private.current_client_id('member')));
create policy document_chunks_update on public.document_chunks
  for update to authenticated
  using (client_id = (select private.current_client_id('member')))
  with check (client_id = (select private.current_client_id('member')));
create policy document_chunks_delete on public.document_chunks
  for delete to authenticated
  using (client_id = (select private.current_client_id('member')));
-- <<< sql/policies/tenant_table.sql.j2 table=document_chunks select=viewer insert=member update=member delete=member

-- >>> sql/policies/tenant_table.sql.j2 table=document_versions select=viewer insert=none update=none delete=none
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for document_versions: select=viewer, insert=none, update=none, delete=none. */
alter table public.document_versions enable row level security;
alter table public.document_versions force row level security;
create policy document_versions_select on public.document_versions
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));
-- <<< sql/policies/tenant_table.sql.j2 table=document_versions select=viewer insert=none update=none delete=none

-- >>> sql/policies/tenant_table.sql.j2 table=document_usage_stats select=viewer insert=none update=none delete=none
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for document_usage_stats: select=viewer, insert=none, update=none, delete=none. */
alter table public.document_usage_stats enable row level security;
alter table public.document_usage_stats force row level security;
create policy document_usage_stats_select on public.document_usage_stats
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));
-- <<< sql/policies/tenant_table.sql.j2 table=document_usage_stats select=viewer insert=none update=none delete=none

notify pgrst, 'reload schema';
