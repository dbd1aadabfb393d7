-- depends:
--
-- 0001 check-prerequisites
-- what: verify that the target has what every Supabase project provides (the API roles, the
-- auth/extensions/storage schemas, auth.uid()/role()/email()/jwt(), auth.users, the
-- supabase_realtime publication, pgvector >= 0.8.0), enable pgvector in schema extensions if it is only
-- available, and create the unexposed schema `private` for helpers.
-- why: the chain must run unchanged on Supabase and on a plain Postgres prepared by the local
-- shim (sql/supabase/, applied by `make migrate` before this chain, never part of it). Failing
-- here, with a message that names every missing piece, beats failing halfway through 0002.
-- SQLSTATE RNP01 = prerequisite missing.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

do $$
declare
  missing text[] := '{}';
  r text;
begin
  foreach r in array array['anon', 'authenticated', 'service_role', 'authenticator'] loop
    if not exists (select from pg_catalog.pg_roles where rolname = r) then
      missing := missing || pg_catalog.format('role %s', r);
    end if;
  end loop;
  foreach r in array array['auth', 'extensions', 'storage'] loop
    if not exists (select from pg_catalog.pg_namespace where nspname = r) then
      missing := missing || pg_catalog.format('schema %s', r);
    end if;
  end loop;
  foreach r in array array['uid', 'role', 'email', 'jwt'] loop
    if not exists (
      select from pg_catalog.pg_proc as p
      join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
      where n.nspname = 'auth' and p.proname = r and p.pronargs = 0
    ) then
      missing := missing || pg_catalog.format('function auth.%s()', r);
    end if;
  end loop;
  if pg_catalog.to_regclass('auth.users') is null then
    missing := missing || 'table auth.users'::text;
  end if;
  if pg_catalog.to_regclass('storage.objects') is null then
    missing := missing || 'table storage.objects'::text;
  end if;
  if not exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    missing := missing || 'publication supabase_realtime'::text;
  end if;
  if exists (
    select from pg_catalog.pg_extension as e
    join pg_catalog.pg_namespace as n on n.oid = e.extnamespace
    where e.extname = 'vector' and n.nspname <> 'extensions'
  ) then
    missing := missing || 'extension vector in schema extensions (it is installed in another schema)'::text;
  elsif not exists (select from pg_catalog.pg_available_extensions where name = 'vector') then
    missing := missing || 'extension vector (pgvector is not available on this server)'::text;
  elsif not exists (
    select from pg_catalog.pg_available_extension_versions
     where name = 'vector'
       and pg_catalog.string_to_array(pg_catalog.split_part(version, '-', 1), '.')::integer[]
           >= array[0, 8, 0]
  ) then
    missing := missing || 'extension vector >= 0.8.0 (iterative HNSW scans)'::text;
  end if;
  if pg_catalog.cardinality(missing) > 0 then
    raise exception using
      errcode = 'RNP01',
      message = 'renum-db prerequisites missing: ' || pg_catalog.array_to_string(missing, ', '),
      hint = 'On Supabase these exist already; elsewhere run `make migrate`, which applies the local shim in sql/supabase/ first.';
  end if;
end;
$$;

create extension if not exists vector with schema extensions;

create schema if not exists private;
comment on schema private is
  'renum-db internals: RLS helpers and trigger functions. Never exposed through PostgREST.';
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- Functions are not executable by PUBLIC unless granted (Supabase still grants its API roles
-- in schema public by default privileges; each migration grants and revokes explicitly).
alter default privileges revoke execute on functions from public;

notify pgrst, 'reload schema';
