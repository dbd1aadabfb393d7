/* why
   Every Supabase project has an (initially empty) publication
   supabase_realtime (supabase/postgres
   migrations/db/init-scripts/00000000000000-initial-schema.sql:
   "create publication supabase_realtime;"). Supabase Realtime streams the
   changes of the tables added to it, and our migrations add tables with
   "alter publication supabase_realtime add table ...".

   Locally there is no Realtime, so this shim creates the publication, only if
   missing, with no tables and not "for all tables", exactly as Supabase does.
   An existing publication is left untouched.
   Idempotent: safe to apply any number of times, as a superuser
   (supabase_admin on the embedded cluster, postgres on a plain PostgreSQL).
*/

do $$
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
    -- Owned by postgres, as on Supabase (its init scripts ran as postgres), so that
    -- migrations running as postgres can add their tables to it.
    alter publication supabase_realtime owner to postgres;
  end if;
end
$$;
