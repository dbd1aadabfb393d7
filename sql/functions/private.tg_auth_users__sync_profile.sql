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
  values (new.id, new_client, new.email, new_role::public.user_role,
          coalesce(new.created_at, pg_catalog.now()), new.last_sign_in_at)
  on conflict (id) do nothing;
  return new;
end;
$$;

comment on function private.tg_auth_users__sync_profile() is
  'Trigger on auth.users: creates the public.users profile from app_metadata (client_id, role) on insert (SQLSTATE RNU01 on bad metadata) and keeps email and last_login in step on update.';

revoke all on function private.tg_auth_users__sync_profile() from public, anon, authenticated, service_role;
