/* why
   Every Supabase project has a schema "auth" managed by Supabase Auth
   (GoTrue): the table auth.users, which our tables reference, and the helper
   functions auth.uid(), auth.role(), auth.email() and auth.jwt(), which our
   RLS policies call. They read the JWT claims that PostgREST puts in the
   settings request.jwt.claims (json) and, for older PostgREST, the legacy
   per-claim request.jwt.claim.<name>, treating '' as null.

   Sources followed:
     supabase/postgres migrations/db/init-scripts/00000000000001-auth-schema.sql
       (schema, usage for the API roles, owner supabase_auth_admin)
     supabase/auth migrations/20220224000811_update_auth_functions.up.sql
       (uid, role, email) and 20220531120530_add_auth_jwt_function.up.sql (jwt
       and the "Deprecated" comments); the 2024 "set search_path to ''" version
       was reverted upstream (supabase/auth PR #1634), so none is set here.
     supabase/auth migrations for the auth.users columns, constraints and
       indexes (20210710035447 .. 20240214120130) and
       20240612123726_enable_rls_update_grants.up.sql (RLS on auth.users).

   supautils: on hosted Supabase postgres is no longer a member of supabase_auth_admin, yet
   may create and drop triggers on auth.users because supautils lets it. PostgreSQL lets a
   TRIGGER grantee create a trigger but only the owner drop one, so locally postgres gets the
   narrowest membership that allows it: supabase_auth_admin with INHERIT TRUE (ownership
   checks pass), SET FALSE (postgres cannot become the role) and no ADMIN OPTION. Listed in
   docs/operations.md ("Hosted shape and supautils").

   Locally there is no GoTrue, so this shim creates these objects, only where
   missing: an existing schema, table or function is left untouched. Only
   auth.users is recreated, not GoTrue's other tables (identities, sessions...).
   Idempotent: safe to apply any number of times, as a superuser
   (supabase_admin on the embedded cluster, postgres on a plain PostgreSQL).
*/

do $$
begin
  if not exists (select 1 from pg_catalog.pg_namespace where nspname = 'auth') then
    create schema auth authorization supabase_auth_admin;
    comment on schema auth is 'Supabase Auth schema (created locally by the renum-db shim).';
    grant usage on schema auth to postgres;
  end if;
end
$$;

-- Usage for the API roles, granted only where it is missing.
do $$
declare
  api_role text;
begin
  foreach api_role in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_catalog.has_schema_privilege(api_role, 'auth', 'usage') then
      execute pg_catalog.format('grant usage on schema auth to %I', api_role);
    end if;
  end loop;
end
$$;

-- auth.users, as GoTrue leaves it after its migrations. No defaults on id,
-- created_at or updated_at: GoTrue supplies them, exactly as on Supabase.
do $$
begin
  if pg_catalog.to_regclass('auth.users') is null then
    create table auth.users (
      instance_id uuid,
      id uuid not null,
      aud character varying(255),
      role character varying(255),
      email character varying(255),
      encrypted_password character varying(255),
      email_confirmed_at timestamp with time zone,
      invited_at timestamp with time zone,
      confirmation_token character varying(255),
      confirmation_sent_at timestamp with time zone,
      recovery_token character varying(255),
      recovery_sent_at timestamp with time zone,
      email_change_token_new character varying(255),
      email_change character varying(255),
      email_change_sent_at timestamp with time zone,
      last_sign_in_at timestamp with time zone,
      raw_app_meta_data jsonb,
      raw_user_meta_data jsonb,
      is_super_admin boolean,
      created_at timestamp with time zone,
      updated_at timestamp with time zone,
      phone text default null::character varying,
      phone_confirmed_at timestamp with time zone,
      phone_change text default ''::character varying,
      phone_change_token character varying(255) default ''::character varying,
      phone_change_sent_at timestamp with time zone,
      confirmed_at timestamp with time zone
        generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
      email_change_token_current character varying(255) default ''::character varying,
      email_change_confirm_status smallint default 0,
      banned_until timestamp with time zone,
      reauthentication_token character varying(255) default ''::character varying,
      reauthentication_sent_at timestamp with time zone,
      is_sso_user boolean not null default false,
      deleted_at timestamp with time zone,
      is_anonymous boolean not null default false,
      constraint users_pkey primary key (id),
      constraint users_phone_key unique (phone),
      constraint users_email_change_confirm_status_check
        check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2)
    );

    create index users_instance_id_idx on auth.users using btree (instance_id);
    create index users_instance_id_email_idx on auth.users using btree (instance_id, lower((email)::text));
    create index users_is_anonymous_idx on auth.users using btree (is_anonymous);
    create unique index users_email_partial_key on auth.users using btree (email) where (is_sso_user = false);
    create unique index confirmation_token_idx on auth.users using btree (confirmation_token)
      where ((confirmation_token)::text !~ '^[0-9 ]*$'::text);
    create unique index recovery_token_idx on auth.users using btree (recovery_token)
      where ((recovery_token)::text !~ '^[0-9 ]*$'::text);
    create unique index email_change_token_current_idx on auth.users using btree (email_change_token_current)
      where ((email_change_token_current)::text !~ '^[0-9 ]*$'::text);
    create unique index email_change_token_new_idx on auth.users using btree (email_change_token_new)
      where ((email_change_token_new)::text !~ '^[0-9 ]*$'::text);
    create unique index reauthentication_token_idx on auth.users using btree (reauthentication_token)
      where ((reauthentication_token)::text !~ '^[0-9 ]*$'::text);

    comment on table auth.users is 'Auth: Stores user login data within a secure schema.';
    comment on column auth.users.is_sso_user is 'Auth: Set this column to true when the account comes from SSO. These accounts can have duplicate emails.';
    comment on index auth.users_email_partial_key is 'Auth: A partial unique index that applies only when is_sso_user is false';

    alter table auth.users enable row level security;
    alter table auth.users owner to supabase_auth_admin;

    -- As on Supabase: postgres may read (and re-grant reading of) auth.users;
    -- anon, authenticated and service_role get nothing on it.
    grant all on table auth.users to postgres;
    grant select on table auth.users to postgres with grant option;
  end if;
end
$$;

-- The helper functions, each created only if missing.
do $$
begin
  if pg_catalog.to_regprocedure('auth.uid()') is null then
    create function auth.uid()
    returns uuid
    language sql stable
    as $fn$
      select
      coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
      )::uuid
    $fn$;
    comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
    alter function auth.uid() owner to supabase_auth_admin;
    grant execute on function auth.uid() to anon, authenticated, service_role, postgres;
  end if;

  if pg_catalog.to_regprocedure('auth.role()') is null then
    create function auth.role()
    returns text
    language sql stable
    as $fn$
      select
      coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
      )::text
    $fn$;
    comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';
    alter function auth.role() owner to supabase_auth_admin;
    grant execute on function auth.role() to anon, authenticated, service_role, postgres;
  end if;

  if pg_catalog.to_regprocedure('auth.email()') is null then
    create function auth.email()
    returns text
    language sql stable
    as $fn$
      select
      coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
      )::text
    $fn$;
    comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';
    alter function auth.email() owner to supabase_auth_admin;
    grant execute on function auth.email() to anon, authenticated, service_role, postgres;
  end if;

  if pg_catalog.to_regprocedure('auth.jwt()') is null then
    create function auth.jwt()
    returns jsonb
    language sql stable
    as $fn$
      select
        coalesce(
          nullif(current_setting('request.jwt.claim', true), ''),
          nullif(current_setting('request.jwt.claims', true), '')
        )::jsonb
    $fn$;
    comment on function auth.jwt() is 'The JWT claims of the current request as jsonb (request.jwt.claims), as on Supabase; null outside a request.';
    alter function auth.jwt() owner to supabase_auth_admin;
    grant execute on function auth.jwt() to anon, authenticated, service_role, postgres;
  end if;
end
$$;

-- supautils stand-in (see the header): postgres may create and drop triggers on auth.users.
-- Only for a non-superuser postgres, only on PostgreSQL 16+ (grant ... with set).
do $$
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'postgres' and not rolsuper)
     and pg_catalog.current_setting('server_version_num')::integer >= 160000
     and not exists (
       select 1
       from pg_catalog.pg_auth_members m
       where m.roleid = (select oid from pg_catalog.pg_roles where rolname = 'supabase_auth_admin')
         and m.member = (select oid from pg_catalog.pg_roles where rolname = 'postgres')
     ) then
    execute 'grant supabase_auth_admin to postgres with inherit true, set false';
  end if;
end
$$;
