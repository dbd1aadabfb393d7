/* why
   Every Supabase project has a schema "storage" managed by Supabase Storage:
   the tables storage.buckets and storage.objects (RLS enabled, fully granted
   to anon, authenticated and service_role through default privileges; RLS
   policies guard them) and the helpers storage.foldername(), storage.filename()
   and storage.extension() that storage RLS policies call.

   Sources followed:
     supabase/postgres migrations/db/init-scripts/00000000000002-storage-schema.sql
       (usage and default privileges for the API roles)
     supabase/storage migrations/tenant/0002-storage-schema.sql (tables, bname,
       bucketid_objname, name_prefix_search, RLS, helper functions, owner
       supabase_storage_admin), 0002-pathtoken-column.sql, 0014-add-version.sql,
       0012-add-bucket-custom-limits.sql + 0014-use-bytes-for-max-size.sql,
       0025-custom-metadata.sql, and 0036-optimise-existing-functions.sql
       (current bodies: foldername and extension immutable, filename volatile).
     Columns public, avif_autodetection and owner_id as in the brief / the
       Storage docs ("owner is deprecated, use owner_id").

     0050 (statement triggers protect_buckets_delete / protect_objects_delete calling
       storage.protect_delete(): a direct DELETE on storage.buckets or storage.objects fails
       with 42501 unless the transaction set storage.allow_delete_query = 'true', which the
       Storage service does, transaction-locally, right before its own deletes).

   supautils: on hosted Supabase postgres is no longer a member of supabase_storage_admin,
   yet may create policies on storage.objects because supautils lets it. PostgreSQL itself
   only lets the table owner create policies, so locally postgres gets the narrowest
   membership that allows it: supabase_storage_admin with INHERIT TRUE (ownership checks
   pass), SET FALSE (postgres cannot become the role) and no ADMIN OPTION. Listed in
   docs/operations.md ("Hosted shape and supautils").

   Locally there is no Storage service, so this shim creates these objects,
   only where missing: an existing schema, table or function is left
   untouched. Storage's other tables and functions (migrations, search,
   s3 multipart, prefixes...) are not recreated.
   Idempotent: safe to apply any number of times, as a superuser
   (supabase_admin on the embedded cluster, postgres on a plain PostgreSQL).
*/

do $$
begin
  if not exists (select 1 from pg_catalog.pg_namespace where nspname = 'storage') then
    create schema storage authorization supabase_storage_admin;
    comment on schema storage is 'Supabase Storage schema (created locally by the renum-db shim).';
    grant usage on schema storage to postgres;
    -- As on Supabase: whatever the storage admin creates here is granted to
    -- the API roles (and postgres).
    alter default privileges for role supabase_storage_admin in schema storage
      grant all on tables to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_storage_admin in schema storage
      grant all on functions to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_storage_admin in schema storage
      grant all on sequences to postgres, anon, authenticated, service_role;
  end if;
end
$$;

-- Usage for the API roles, granted only where it is missing.
do $$
declare
  api_role text;
begin
  foreach api_role in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_catalog.has_schema_privilege(api_role, 'storage', 'usage') then
      execute pg_catalog.format('grant usage on schema storage to %I', api_role);
    end if;
  end loop;
end
$$;

do $$
begin
  if pg_catalog.to_regclass('storage.buckets') is null then
    create table storage.buckets (
      id text not null,
      name text not null,
      owner uuid,
      created_at timestamp with time zone default now(),
      updated_at timestamp with time zone default now(),
      public boolean default false,
      avif_autodetection boolean default false,
      file_size_limit bigint,
      allowed_mime_types text[],
      owner_id text,
      constraint buckets_pkey primary key (id)
    );
    create unique index bname on storage.buckets using btree (name);

    comment on table storage.buckets is 'Supabase Storage buckets (created locally by the renum-db shim).';
    comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';

    alter table storage.buckets enable row level security;
    alter table storage.buckets owner to supabase_storage_admin;
    grant all on table storage.buckets to postgres, anon, authenticated, service_role;
  end if;

  if pg_catalog.to_regclass('storage.objects') is null then
    create table storage.objects (
      id uuid not null default gen_random_uuid(),
      bucket_id text,
      name text,
      owner uuid,
      created_at timestamp with time zone default now(),
      updated_at timestamp with time zone default now(),
      last_accessed_at timestamp with time zone default now(),
      metadata jsonb,
      path_tokens text[] generated always as (string_to_array(name, '/')) stored,
      version text,
      owner_id text,
      user_metadata jsonb,
      constraint objects_pkey primary key (id),
      constraint "objects_bucketId_fkey" foreign key (bucket_id) references storage.buckets (id)
    );
    create unique index bucketid_objname on storage.objects using btree (bucket_id, name);
    create index name_prefix_search on storage.objects using btree (name text_pattern_ops);

    comment on table storage.objects is 'Supabase Storage objects (created locally by the renum-db shim).';
    comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';

    alter table storage.objects enable row level security;
    alter table storage.objects owner to supabase_storage_admin;
    grant all on table storage.objects to postgres, anon, authenticated, service_role;
  end if;
end
$$;

-- The helper functions, each created only if missing, with Supabase's bodies.
do $$
begin
  if pg_catalog.to_regprocedure('storage.foldername(text)') is null then
    create function storage.foldername(name text)
    returns text[]
    language plpgsql
    immutable
    as $fn$
    declare
        _parts text[];
    begin
        -- split on "/" to get path segments
        select string_to_array(name, '/') into _parts;
        -- return everything except the last segment
        return _parts[1 : array_length(_parts,1) - 1];
    end
    $fn$;
    comment on function storage.foldername(text) is 'Folder segments of an object name: storage.foldername(''a/b/c.txt'') = {a,b} (Supabase Storage helper).';
    alter function storage.foldername(text) owner to supabase_storage_admin;
    grant all on function storage.foldername(text) to postgres, anon, authenticated, service_role;
  end if;

  if pg_catalog.to_regprocedure('storage.filename(text)') is null then
    create function storage.filename(name text)
    returns text
    language plpgsql
    as $fn$
    declare
    _parts text[];
    begin
        select string_to_array(name, '/') into _parts;
        return _parts[array_length(_parts,1)];
    end
    $fn$;
    comment on function storage.filename(text) is 'Last segment of an object name: storage.filename(''a/b/c.txt'') = c.txt (Supabase Storage helper).';
    alter function storage.filename(text) owner to supabase_storage_admin;
    grant all on function storage.filename(text) to postgres, anon, authenticated, service_role;
  end if;

  if pg_catalog.to_regprocedure('storage.extension(text)') is null then
    create function storage.extension(name text)
    returns text
    language plpgsql
    immutable
    as $fn$
    declare
        _parts text[];
        _filename text;
    begin
        select string_to_array(name, '/') into _parts;
        select _parts[array_length(_parts,1)] into _filename;
        return reverse(split_part(reverse(_filename), '.', 1));
    end
    $fn$;
    comment on function storage.extension(text) is 'Text after the last dot of the file name: storage.extension(''a/b/c.tar.gz'') = gz (Supabase Storage helper).';
    alter function storage.extension(text) owner to supabase_storage_admin;
    grant all on function storage.extension(text) to postgres, anon, authenticated, service_role;
  end if;
end
$$;

-- Direct deletes are refused unless the Storage service (or whoever acts like it) set
-- storage.allow_delete_query for the transaction. Created only where missing.
do $$
begin
  if pg_catalog.to_regprocedure('storage.protect_delete()') is null then
    create function storage.protect_delete()
    returns trigger
    language plpgsql
    as $fn$
    begin
      if coalesce(pg_catalog.current_setting('storage.allow_delete_query', true), 'false') <> 'true' then
        raise exception 'direct deletion from storage tables is not allowed; use the Storage API'
          using errcode = '42501',
                hint = 'The Storage service sets storage.allow_delete_query for its own deletes.';
      end if;
      return null;
    end
    $fn$;
    comment on function storage.protect_delete() is 'Statement trigger: refuses a DELETE on storage.buckets / storage.objects unless storage.allow_delete_query = true (as Supabase Storage).';
    alter function storage.protect_delete() owner to supabase_storage_admin;
  end if;

  if not exists (select 1 from pg_catalog.pg_trigger
                 where tgname = 'protect_buckets_delete'
                   and tgrelid = 'storage.buckets'::regclass) then
    create trigger protect_buckets_delete
      before delete on storage.buckets
      for each statement execute function storage.protect_delete();
  end if;

  if not exists (select 1 from pg_catalog.pg_trigger
                 where tgname = 'protect_objects_delete'
                   and tgrelid = 'storage.objects'::regclass) then
    create trigger protect_objects_delete
      before delete on storage.objects
      for each statement execute function storage.protect_delete();
  end if;
end
$$;

-- supautils stand-in (see the header): postgres may create policies on storage.objects.
-- Only for a non-superuser postgres, only on PostgreSQL 16+ (grant ... with set).
do $$
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'postgres' and not rolsuper)
     and pg_catalog.current_setting('server_version_num')::integer >= 160000
     and not exists (
       select 1
       from pg_catalog.pg_auth_members m
       where m.roleid = (select oid from pg_catalog.pg_roles where rolname = 'supabase_storage_admin')
         and m.member = (select oid from pg_catalog.pg_roles where rolname = 'postgres')
     ) then
    execute 'grant supabase_storage_admin to postgres with inherit true, set false';
  end if;
end
$$;
