-- 0011 rollback: drop the api_credentials update guard.
set local lock_timeout = '10s';
set local statement_timeout = '5min';
drop trigger if exists api_credentials_update_guard on public.api_credentials;
drop function if exists private.tg_api_credentials__guard_update();
