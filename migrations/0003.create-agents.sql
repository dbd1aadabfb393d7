-- depends: 0002.create-tenancy
--
-- 0003 create-agents
-- what: public.agents (per-tenant agent configurations), public.agent_executions (runs of an
-- agent by a user) and public.api_credentials (encrypted third-party secrets of a tenant).
-- why: seed 000's agent system. Every table carries client_id, and each foreign key between
-- tenant tables includes it, so a row can never point into another tenant. The ciphertext in
-- api_credentials.encrypted_value is never granted to API users (column privileges): only the
-- backend (service_role) reads or writes it.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

create table public.agents (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id()
    references public.clients (id) on delete cascade,
  name text not null,
  description text,
  configuration jsonb not null default '{}'::jsonb,
  status text not null default 'active',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint agents_client_id_id_key unique (client_id, id),
  constraint agents_client_id_name_key unique (client_id, name),
  constraint agents_name_chk check (length(btrim(name)) between 1 and 200),
  constraint agents_status_chk check (status in ('active', 'inactive', 'archived')),
  constraint agents_configuration_chk check (jsonb_typeof(configuration) = 'object')
);
comment on table public.agents is 'AI agents of a tenant. Viewers read; admins create, change and delete.';
comment on column public.agents.status is 'active | inactive | archived; only active agents run.';

create table public.agent_executions (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id()
    references public.clients (id) on delete cascade,
  agent_id uuid not null,
  user_id uuid default auth.uid(),
  status text not null default 'pending',
  input jsonb not null default '{}'::jsonb,
  output jsonb,
  error text,
  tokens_used bigint not null default 0,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  constraint agent_executions_client_id_id_key unique (client_id, id),
  constraint agent_executions_agent_fk foreign key (client_id, agent_id)
    references public.agents (client_id, id) on delete cascade,
  constraint agent_executions_user_fk foreign key (client_id, user_id)
    references public.users (client_id, id) on delete set null (user_id),
  constraint agent_executions_status_chk
    check (status in ('pending', 'running', 'completed', 'failed', 'cancelled')),
  constraint agent_executions_tokens_used_chk check (tokens_used >= 0),
  constraint agent_executions_completed_after_started_chk
    check (completed_at is null or started_at is null or completed_at >= started_at)
);
comment on table public.agent_executions is
  'Runs of an agent. The tenant reads them; members start them as themselves (user_id = auth.uid()); status, output and tokens are written by the backend.';
comment on column public.agent_executions.status is 'pending | running | completed | failed | cancelled.';
comment on column public.agent_executions.tokens_used is 'LLM tokens consumed by the run (non-negative).';

create index agent_executions_agent_idx on public.agent_executions (client_id, agent_id);
create index agent_executions_user_idx on public.agent_executions (client_id, user_id);

create table public.api_credentials (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id()
    references public.clients (id) on delete cascade,
  service_name text not null,
  credential_type text not null default 'api_key',
  encrypted_value text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_used_at timestamptz,
  constraint api_credentials_client_id_service_key unique (client_id, service_name, credential_type),
  constraint api_credentials_service_name_chk check (length(btrim(service_name)) between 1 and 100),
  constraint api_credentials_credential_type_chk
    check (credential_type in ('api_key', 'oauth_token', 'bearer_token', 'basic_auth', 'secret')),
  constraint api_credentials_encrypted_value_chk check (length(encrypted_value) > 0)
);
comment on table public.api_credentials is
  'Encrypted third-party credentials of a tenant. Admins read and manage metadata; encrypted_value is readable and writable only by the backend (service_role).';
comment on column public.api_credentials.encrypted_value is 'Ciphertext (Fernet); never granted to anon or authenticated.';

create trigger agents_set_updated_at
  before update on public.agents
  for each row execute function private.tg__set_updated_at();
create trigger agents_forbid_client_id_change
  before update of client_id on public.agents
  for each row execute function private.tg__forbid_client_id_change();
create trigger agent_executions_forbid_client_id_change
  before update of client_id on public.agent_executions
  for each row execute function private.tg__forbid_client_id_change();
create trigger api_credentials_set_updated_at
  before update on public.api_credentials
  for each row execute function private.tg__set_updated_at();
create trigger api_credentials_forbid_client_id_change
  before update of client_id on public.api_credentials
  for each row execute function private.tg__forbid_client_id_change();

revoke all on table public.agents from public, anon, authenticated, service_role;
grant select on table public.agents to authenticated;
grant insert (client_id, name, description, configuration, status) on table public.agents to authenticated;
grant update (name, description, configuration, status) on table public.agents to authenticated;
grant delete on table public.agents to authenticated;
grant select, insert, update, delete on table public.agents to service_role;

revoke all on table public.agent_executions from public, anon, authenticated, service_role;
grant select on table public.agent_executions to authenticated;
grant insert (client_id, agent_id, input) on table public.agent_executions to authenticated;
grant select, insert, update, delete on table public.agent_executions to service_role;

revoke all on table public.api_credentials from public, anon, authenticated, service_role;
grant select (id, client_id, service_name, credential_type, created_at, updated_at, last_used_at)
  on table public.api_credentials to authenticated;
grant update (service_name, credential_type) on table public.api_credentials to authenticated;
grant delete on table public.api_credentials to authenticated;
grant select, insert, update, delete on table public.api_credentials to service_role;

-- >>> sql/policies/tenant_table.sql.j2 table=agents select=viewer insert=admin update=admin delete=admin
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for agents: select=viewer, insert=admin, update=admin, delete=admin. */
alter table public.agents enable row level security;
alter table public.agents force row level security;
create policy agents_select on public.agents
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));
create policy agents_insert on public.agents
  for insert to authenticated
  with check (client_id = (select private.current_client_id('admin')));
create policy agents_update on public.agents
  for update to authenticated
  using (client_id = (select private.current_client_id('admin')))
  with check (client_id = (select private.current_client_id('admin')));
create policy agents_delete on public.agents
  for delete to authenticated
  using (client_id = (select private.current_client_id('admin')));
-- <<< sql/policies/tenant_table.sql.j2 table=agents select=viewer insert=admin update=admin delete=admin

-- >>> sql/policies/agent_executions.sql.j2 table=agent_executions
/* why: executions are visible to the whole tenant; members start them, always as themselves
   (user_id defaults to auth.uid() and is not writable by API users; the check repeats it).
   Progress, output and status are written by the backend (service_role) and, later, by
   workflow functions, never directly by a browser. */
alter table public.agent_executions enable row level security;
alter table public.agent_executions force row level security;

create policy agent_executions_select on public.agent_executions
  for select to authenticated
  using (client_id = (select private.current_client_id('viewer')));

create policy agent_executions_insert on public.agent_executions
  for insert to authenticated
  with check (
    client_id = (select private.current_client_id('member'))
    and user_id = (select auth.uid())
  );
-- <<< sql/policies/agent_executions.sql.j2 table=agent_executions

-- >>> sql/policies/tenant_table.sql.j2 table=api_credentials select=admin insert=none update=admin delete=admin
/* why: the policy set shared by tenant-owned tables. A row is visible to users of its own
   client; each operation requires a minimum role inside the tenant (viewer < member < admin), or
   is not granted to API users at all (no policy: with RLS forced, nothing passes).
   private.current_client_id(min_role) returns the caller's client only when the caller holds
   that role, so each policy is one equality on the indexed client_id, evaluated once per
   statement through `(select ...)`. service_role bypasses RLS (it is the backend).
   Rendered for api_credentials: select=admin, insert=none, update=admin, delete=admin. */
alter table public.api_credentials enable row level security;
alter table public.api_credentials force row level security;
create policy api_credentials_select on public.api_credentials
  for select to authenticated
  using (client_id = (select private.current_client_id('admin')));
create policy api_credentials_update on public.api_credentials
  for update to authenticated
  using (client_id = (select private.current_client_id('admin')))
  with check (client_id = (select private.current_client_id('admin')));
create policy api_credentials_delete on public.api_credentials
  for delete to authenticated
  using (client_id = (select private.current_client_id('admin')));
-- <<< sql/policies/tenant_table.sql.j2 table=api_credentials select=admin insert=none update=admin delete=admin

notify pgrst, 'reload schema';
