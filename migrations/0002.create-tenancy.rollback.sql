-- 0002 rollback: drop the auth.users triggers, the tables (policies and table triggers go with
-- them) and the helper functions.
set local lock_timeout = '10s';
set local statement_timeout = '5min';
drop trigger if exists auth_users_sync_profile_update on auth.users;
drop trigger if exists auth_users_sync_profile_insert on auth.users;
drop table if exists public.users;
drop table if exists public.clients;
drop function if exists private.tg_auth_users__sync_profile();
drop function if exists private.tg__forbid_client_id_change();
drop function if exists private.tg__set_updated_at();
drop function if exists private.current_client_id(text);
