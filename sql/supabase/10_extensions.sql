/* why
   Every Supabase project has a schema "extensions" (supabase/postgres
   migrations/db/init-scripts/00000000000000-initial-schema.sql) into which
   extensions are installed, with usage granted to anon, authenticated and
   service_role so that extension types and functions work through the API.
   pgvector is enabled there from the dashboard ("create extension vector
   with schema extensions"); our migrations use extensions.vector.

   A plain local PostgreSQL has neither, so this shim creates them, only where
   missing. pgcrypto is deliberately not created: gen_random_uuid() is core
   PostgreSQL (13+), so our migrations do not need it.
   Idempotent: safe to apply any number of times, as a superuser
   (supabase_admin on the embedded cluster, postgres on a plain PostgreSQL).
*/

do $$
begin
  if not exists (select 1 from pg_catalog.pg_namespace where nspname = 'extensions') then
    -- Owned by postgres, as on Supabase (its init scripts ran as postgres).
    create schema extensions authorization postgres;
    comment on schema extensions is 'Schema for extensions, as on Supabase (created locally by the renum-db shim).';
  end if;
end
$$;

-- Usage for the API roles, granted only where it is missing.
do $$
declare
  api_role text;
begin
  foreach api_role in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_catalog.has_schema_privilege(api_role, 'extensions', 'usage') then
      execute pg_catalog.format('grant usage on schema extensions to %I', api_role);
    end if;
  end loop;
end
$$;

-- If vector is already installed (in any schema) this leaves it untouched.
create extension if not exists vector with schema extensions;
