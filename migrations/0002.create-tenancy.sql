-- depends: 0001.check-prerequisites
--
-- 0002 create-tenancy
-- what: public.clients (the tenants) and public.users (profiles of auth.users, each in at most
-- one client with a role viewer | member | admin), the tenant helper used by every policy, the
-- shared trigger functions, and the auth.users trigger that creates profiles.
-- why: tenant resolution must come from the database (a user's profile), not from the JWT
-- subject: seed 000 compared client_id with auth.uid(), a tenant with a user.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

create table public.clients (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  status text not null default 'active',
  settings jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint clients_name_chk check (length(btrim(name)) between 1 and 200),
  constraint clients_status_chk check (status in ('active', 'suspended', 'inactive')),
  constraint clients_settings_chk check (jsonb_typeof(settings) = 'object')
);
comment on table public.clients is
  'Tenants (client organisations). Users of a client read it; its admins edit name and settings; only the backend creates, suspends or deletes clients. A client that is not active gives its users no access.';
comment on column public.clients.status is 'active | suspended | inactive; only active clients grant access.';
comment on column public.clients.settings is 'Tenant settings (a JSON object), e.g. quotas.';

create table public.users (
  id uuid primary key references auth.users (id) on delete cascade,
  client_id uuid references public.clients (id) on delete set null,
  email text,
  role text not null default 'viewer',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_login timestamptz,
  constraint users_role_chk check (role in ('viewer', 'member', 'admin')),
  constraint users_client_id_id_key unique (client_id, id)
);
comment on table public.users is
  'User profiles, one per auth.users row, created by a trigger on auth.users from app_metadata (client_id, role). client_id null = no tenant, no tenant data.';
comment on column public.users.role is 'Role inside the client: viewer (read), member (also write knowledge, run agents), admin (also manage agents, credentials, roles, the client).';
comment on column public.users.last_login is 'Copied from auth.users.last_sign_in_at by trigger.';

-- >>> sql/functions/private.current_client_id.sql
/* why: every tenant policy needs "the caller's client, if the caller may do this". One helper
   answers both questions so each policy is a single indexable equality:
       client_id = (select private.current_client_id('member'))
   It returns null (so the policy matches nothing) when the caller has no JWT, no profile row, no
   client, a client that is not active, or a role below `min_role` (viewer < member < admin).
   security definer: it must read public.users and public.clients, whose own RLS would otherwise
   recurse; it reads only the caller's own row (auth.uid()), so it discloses nothing. It lives in
   the unexposed schema `private`, pins search_path = '' and is executable only by the API roles
   that evaluate policies and column defaults. Stable, so `(select ...)` runs it once per statement. */
create or replace function private.current_client_id(min_role text default 'viewer')
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select u.client_id
  from public.users as u
  join public.clients as c on c.id = u.client_id
  where u.id = auth.uid()
    and c.status = 'active'
    and array_position(array['viewer', 'member', 'admin'], u.role)
        >= array_position(array['viewer', 'member', 'admin'], current_client_id.min_role)
$$;

comment on function private.current_client_id(text) is
  'The calling user''s client id if the client is active and the user''s role is at least min_role (viewer < member < admin); null otherwise. Used by RLS policies and client_id defaults.';

revoke all on function private.current_client_id(text) from public;
grant execute on function private.current_client_id(text) to authenticated, service_role;
-- <<< sql/functions/private.current_client_id.sql

-- >>> sql/functions/private.tg__set_updated_at.sql
/* why: `updated_at` must mean "last changed", whoever changed the row and however (PostgREST,
   backend, SQL console), so the database keeps it rather than application code. The function is
   shared by every table that has the column (tg__ prefix); security invoker, since it only touches
   the row being written. Trigger functions need no EXECUTE grant to fire, so none is given. */
create or replace function private.tg__set_updated_at()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  new.updated_at := pg_catalog.now();
  return new;
end;
$$;

comment on function private.tg__set_updated_at() is
  'Trigger: sets updated_at to now() on every update.';

revoke all on function private.tg__set_updated_at() from public;
-- <<< sql/functions/private.tg__set_updated_at.sql

-- >>> sql/functions/private.tg__forbid_client_id_change.sql
/* why: a row belongs to one tenant for life. Column privileges already stop API users from
   writing client_id on update, and composite foreign keys stop a row from pointing into another
   tenant; this trigger closes the last gap (a backend or console update moving a leaf row) and
   keeps the distribution column immutable, which Citus requires if tenants are ever sharded.
   security invoker: it only inspects the row being written. */
create or replace function private.tg__forbid_client_id_change()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if new.client_id is distinct from old.client_id then
    raise exception using
      errcode = 'RNT01',
      message = pg_catalog.format('%s.client_id cannot change (row %s)', tg_table_name, old.id),
      hint = 'Rows never move between tenants; copy the row into the other tenant instead.';
  end if;
  return new;
end;
$$;

comment on function private.tg__forbid_client_id_change() is
  'Trigger: rejects any update that changes client_id (SQLSTATE RNT01).';

revoke all on function private.tg__forbid_client_id_change() from public;
-- <<< sql/functions/private.tg__forbid_client_id_change.sql

-- >>> sql/functions/private.tg_auth_users__sync_profile.sql
/* why: every Supabase Auth user needs a public.users profile, and writing it from application
   code after sign-up races and can be skipped. This trigger on auth.users writes it in the same
   transaction as the auth row:
   - insert: creates public.users from raw_app_meta_data ->> 'client_id' and ->> 'role' (default
     viewer). app_metadata is writable only with the service key, so a user cannot pick a tenant.
     No client_id means a profile with no tenant, hence no tenant data. A malformed client id,
     an unknown client or an unknown role aborts the sign-up with SQLSTATE RNU01 (a backend bug,
     better loud than a user silently attached to nothing).
   - update: keeps email and last_login (from last_sign_in_at) in step; client and role are
     managed in public.users afterwards (by admins and the backend), not re-read from metadata.
   security definer: the auth service's role cannot write public.users under RLS; the function
   writes only the row of the auth user being changed. */
create or replace function private.tg_auth_users__sync_profile()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  meta jsonb := coalesce(new.raw_app_meta_data, '{}'::jsonb);
  raw_client text := nullif(meta ->> 'client_id', '');
  new_role text := coalesce(nullif(meta ->> 'role', ''), 'viewer');
  new_client uuid;
begin
  if tg_op = 'UPDATE' then
    update public.users as u
       set email = new.email,
           last_login = new.last_sign_in_at
     where u.id = new.id
       and (u.email is distinct from new.email or u.last_login is distinct from new.last_sign_in_at);
    return new;
  end if;

  if raw_client is not null then
    if raw_client !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
      raise exception using
        errcode = 'RNU01',
        message = pg_catalog.format('app_metadata.client_id %L is not a uuid', raw_client);
    end if;
    new_client := raw_client::uuid;
    if not exists (select from public.clients as c where c.id = new_client) then
      raise exception using
        errcode = 'RNU01',
        message = pg_catalog.format('app_metadata.client_id %s names no client', new_client),
        hint = 'Create the client first, or leave client_id out of app_metadata.';
    end if;
  end if;
  if new_role not in ('viewer', 'member', 'admin') then
    raise exception using
      errcode = 'RNU01',
      message = pg_catalog.format('app_metadata.role %L is not one of viewer, member, admin', new_role);
  end if;

  insert into public.users (id, client_id, email, role, created_at, last_login)
  values (new.id, new_client, new.email, new_role,
          coalesce(new.created_at, pg_catalog.now()), new.last_sign_in_at)
  on conflict (id) do nothing;
  return new;
end;
$$;

comment on function private.tg_auth_users__sync_profile() is
  'Trigger on auth.users: creates the public.users profile from app_metadata (client_id, role) on insert (SQLSTATE RNU01 on bad metadata) and keeps email and last_login in step on update.';

revoke all on function private.tg_auth_users__sync_profile() from public;
-- <<< sql/functions/private.tg_auth_users__sync_profile.sql

create trigger clients_set_updated_at
  before update on public.clients
  for each row execute function private.tg__set_updated_at();

create trigger users_set_updated_at
  before update on public.users
  for each row execute function private.tg__set_updated_at();

create trigger auth_users_sync_profile_insert
  after insert on auth.users
  for each row execute function private.tg_auth_users__sync_profile();

create trigger auth_users_sync_profile_update
  after update of email, last_sign_in_at on auth.users
  for each row execute function private.tg_auth_users__sync_profile();

-- Privileges: Supabase grants everything in public to anon and authenticated by default;
-- start from nothing and grant exactly the matrix in docs/roles.md.
revoke all on table public.clients from public, anon, authenticated, service_role;
grant select on table public.clients to authenticated;
grant update (name, settings) on table public.clients to authenticated;
grant select, insert, update, delete on table public.clients to service_role;

revoke all on table public.users from public, anon, authenticated, service_role;
grant select on table public.users to authenticated;
grant update (role) on table public.users to authenticated;
grant select, insert, update, delete on table public.users to service_role;

-- >>> sql/policies/clients.sql.j2 table=clients
/* why: a client (tenant) row is the tenant itself: its users read it, its admins edit it (name,
   settings; column privileges keep status and id out of reach), and only the backend creates or
   deletes tenants. */
alter table public.clients enable row level security;
alter table public.clients force row level security;

create policy clients_select on public.clients
  for select to authenticated
  using (id = (select private.current_client_id('viewer')));

create policy clients_update on public.clients
  for update to authenticated
  using (id = (select private.current_client_id('admin')))
  with check (id = (select private.current_client_id('admin')));
-- <<< sql/policies/clients.sql.j2 table=clients

-- >>> sql/policies/users.sql.j2 table=users
/* why: profiles. Everyone sees their own profile (so a frontend can tell "no organisation yet"),
   and users of a tenant see each other. Admins change the role of other users of their tenant,
   never their own (no self-promotion, no locking the last admin out by accident); column
   privileges limit that update to `role`. Profiles are created by the auth.users trigger and
   removed with the auth user, so API users neither insert nor delete them. */
alter table public.users enable row level security;
alter table public.users force row level security;

create policy users_select on public.users
  for select to authenticated
  using (
    id = (select auth.uid())
    or client_id = (select private.current_client_id('viewer'))
  );

create policy users_update on public.users
  for update to authenticated
  using (
    client_id = (select private.current_client_id('admin'))
    and id <> (select auth.uid())
  )
  with check (
    client_id = (select private.current_client_id('admin'))
    and id <> (select auth.uid())
  );
-- <<< sql/policies/users.sql.j2 table=users

notify pgrst, 'reload schema';
