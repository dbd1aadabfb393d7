-- 0006 rollback: leave the realtime publication and drop the table.
set local lock_timeout = '10s';
set local statement_timeout = '5min';
alter publication supabase_realtime drop table public.investigations;
drop table if exists public.investigations;
