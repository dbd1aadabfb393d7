/* why
   Every Supabase project ships with the PostgREST/API roles and the service
   admin roles already in place (supabase/postgres
   migrations/db/init-scripts/00000000000000-initial-schema.sql, -01-auth-schema.sql,
   -02-storage-schema.sql, and migrations/db/migrations/20230529180330_alter_api_roles_for_inherit.sql):
     anon, authenticated   nologin, INHERIT (noinherit at creation, switched to
                           inherit by 20230529180330 / supabase/postgres PR #651)
     service_role          nologin, INHERIT, bypassrls
     authenticator         login, noinherit, member of the three API roles
     supabase_auth_admin, supabase_storage_admin
                           owners of the auth and storage objects
   plus usage on schema public and default privileges that fully grant every
   new table, sequence and function in public to anon, authenticated and
   service_role. That is why projects must rely on RLS and explicit revokes.

   Our migrations assume all of this. A plain local PostgreSQL has none of it,
   so this shim recreates it, only where missing: an existing role is never
   altered, and on a real Supabase database the file changes nothing.
   Idempotent: safe to apply any number of times, as a superuser
   (supabase_admin on the embedded cluster, postgres on a plain PostgreSQL).

   The login role postgres, as hosted Supabase has it (migrations/db/migrate.sh creates it,
   10000000000000_demote-postgres.sql demotes it, 00000000000003-post-setup.sql sets its
   search_path, later migrations grant it the API and predefined roles; the memberships and
   admin options below are those of a hosted project's role dump):
     NOSUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS,
     search_path "$user", public, extensions,
     member WITH ADMIN OPTION of anon, authenticated, service_role, authenticator,
       pg_monitor, pg_read_all_data, pg_signal_backend (and pg_create_subscription),
     no longer a member of supabase_auth_admin / supabase_storage_admin.
   On the embedded cluster the superuser is supabase_admin (as on Supabase) and this
   file creates postgres; on a plain PostgreSQL whose postgres is the superuser, postgres
   exists already and is left alone.
   API role settings from 00000000000000-initial-schema.sql, 20221028101028 and
   20231130133139: anon statement_timeout 3s, authenticated 8s, authenticator 8s and
   lock_timeout 8s (set when the role is created here).
   Run as the cluster superuser (supabase_admin on the embedded cluster).
*/

do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin inherit;
    alter role anon set statement_timeout = '3s';
    comment on role anon is 'Supabase API role for unauthenticated requests (recreated locally by the renum-db shim).';
  end if;

  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin inherit;
    alter role authenticated set statement_timeout = '8s';
    comment on role authenticated is 'Supabase API role for requests with a user JWT (recreated locally by the renum-db shim).';
  end if;

  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin inherit bypassrls;
    comment on role service_role is 'Supabase API role for the service key; bypasses RLS (recreated locally by the renum-db shim).';
  end if;

  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticator') then
    -- login but no password: it only exists so that membership and
    -- "set role" behave as on Supabase; nothing connects as it locally.
    create role authenticator login noinherit;
    alter role authenticator set statement_timeout = '8s';
    alter role authenticator set lock_timeout = '8s';
    comment on role authenticator is 'Supabase PostgREST login role; switches to anon/authenticated/service_role (recreated locally by the renum-db shim).';
  end if;

  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin nologin noinherit createrole;
    alter role supabase_auth_admin set search_path = auth;
    comment on role supabase_auth_admin is 'Supabase Auth (GoTrue) admin; owns the auth schema objects (recreated locally by the renum-db shim, without login).';
  end if;

  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin nologin noinherit createrole;
    alter role supabase_storage_admin set search_path = storage;
    comment on role supabase_storage_admin is 'Supabase Storage admin; owns the storage schema objects (recreated locally by the renum-db shim, without login).';
  end if;

  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'postgres') then
    create role postgres login nosuperuser inherit createrole createdb replication bypassrls;
    alter role postgres set search_path = "$user", public, extensions;
    comment on role postgres is 'Hosted-Supabase-shaped owner of the schema: migrations and tools log in as it (created locally by the renum-db shim; the cluster superuser is supabase_admin).';
  end if;
end
$$;

-- The non-superuser postgres is a member, with admin option, of the API roles, authenticator
-- and the predefined monitoring roles, as on hosted Supabase. Skipped where postgres is the
-- superuser (a plain local PostgreSQL): memberships mean nothing there.
do $$
declare
  granted text;
begin
  if (select rolsuper from pg_catalog.pg_roles where rolname = 'postgres') then
    return;
  end if;
  foreach granted in array array['anon', 'authenticated', 'service_role', 'authenticator',
                                 'pg_monitor', 'pg_read_all_data', 'pg_signal_backend',
                                 'pg_create_subscription'] loop
    if not exists (
      select 1
      from pg_catalog.pg_auth_members m
      where m.roleid = (select oid from pg_catalog.pg_roles where rolname = granted)
        and m.member = (select oid from pg_catalog.pg_roles where rolname = 'postgres')
    ) then
      execute pg_catalog.format('grant %I to postgres with admin option', granted);
    end if;
  end loop;
end
$$;

-- authenticator switches into the API roles: grant membership only where it
-- is missing (a repeated grant would only raise a notice on PostgreSQL 16+).
do $$
declare
  api_role text;
begin
  foreach api_role in array array['anon', 'authenticated', 'service_role'] loop
    if not exists (
      select 1
      from pg_catalog.pg_auth_members m
      where m.roleid = (select oid from pg_catalog.pg_roles where rolname = api_role)
        and m.member = (select oid from pg_catalog.pg_roles where rolname = 'authenticator')
    ) then
      execute pg_catalog.format('grant %I to authenticator', api_role);
    end if;
  end loop;
end
$$;

-- Supabase's privileges on schema public.
grant usage on schema public to anon, authenticated, service_role;

-- Supabase's default privileges for objects the migrating role (postgres)
-- creates in public: everything is granted to the API roles, RLS guards rows.
-- (On Supabase the init scripts ran as postgres; here they name it.)
alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to anon, authenticated, service_role;

-- ... and for what supabase_admin creates there (00000000000000-initial-schema.sql).
do $$
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'supabase_admin') then
    alter default privileges for role supabase_admin in schema public grant all on tables to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_admin in schema public grant all on sequences to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_admin in schema public grant all on functions to postgres, anon, authenticated, service_role;
  end if;
end
$$;
