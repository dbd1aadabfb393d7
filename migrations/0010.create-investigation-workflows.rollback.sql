-- 0010 rollback: drop the workflow functions and trigger, give owners UPDATE on status back, and
-- drop the error column.
set local lock_timeout = '10s';
set local statement_timeout = '5min';
drop function if exists public.cancel_investigation(uuid);
drop function if exists public.fail_investigation(uuid, text);
drop function if exists public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint);
drop function if exists public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint);
drop function if exists public.start_investigation(uuid);
drop function if exists public.create_investigation(text, text, jsonb, jsonb, text);
drop function if exists private.cancel_investigation(uuid);
drop trigger if exists investigations_enforce_workflow on public.investigations;
drop function if exists private.tg_investigations__enforce_workflow();
grant update (status) on table public.investigations to authenticated;
-- A rollback drops the column its migration added:
-- squawk-ignore ban-drop-column
alter table public.investigations drop column if exists error;
notify pgrst, 'reload schema';
