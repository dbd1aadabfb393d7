-- 0001 rollback: drop schema private (its objects belong to later migrations, rolled back
-- first) and restore the default EXECUTE for PUBLIC. pgvector stays: other users of the
-- database may rely on it, and on Supabase it is managed from the dashboard.
set local lock_timeout = '10s';
set local statement_timeout = '5min';
alter default privileges grant execute on functions to public;
drop schema if exists private;
