-- 0033 plan-helpers-once-per-session (rollback): the three helpers are SQL functions again
-- (their bodies of 0014, 0007 and 0013).

set local lock_timeout = '10s';
set local statement_timeout = '5min';

-- >>> sql/functions/private.request_is_backend.sql
/* why: the one test of "is this request the backend?", decided by capability, never by name.
   The request's role is the role PostgREST (or act_as) switched to, `current_setting('role')`, or
   the login role when none was set (a direct backend connection). That GUC keeps its value
   inside security definer functions, where current_user is the function's owner, so the answer
   is the same wherever in a call chain it is asked.
   The backend is a role that may already read and write every tenant's rows itself: BYPASSRLS
   (service_role, hosted Supabase's postgres) or superuser. Letting such a role name the client a
   function acts on grants it nothing it does not have. Every other role, whatever its name (anon,
   authenticated, a custom PostgREST role inheriting authenticated, a role that merely inherits
   service_role's grants: BYPASSRLS is an attribute and is not inherited), is a user and is
   resolved through auth.uid() and public.users; a role this function does not find is a user too.
   security invoker: pg_roles is readable by everyone. stable: one answer per statement. */
create or replace function private.request_is_backend()
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(
    (select r.rolbypassrls or r.rolsuper
       from pg_catalog.pg_roles as r
      where r.rolname = coalesce(nullif(pg_catalog.current_setting('role', true), 'none'),
                                 session_user)),
    false)
$$;

comment on function private.request_is_backend() is
  'True when the request runs as a role that bypasses RLS (BYPASSRLS or superuser: service_role, the backend''s own login); false for every other role, known or not. The one rule behind every "user or backend" decision.';

revoke all on function private.request_is_backend() from public;
grant execute on function private.request_is_backend() to authenticated, service_role;
-- <<< sql/functions/private.request_is_backend.sql

-- >>> sql/functions/private.scoped_document_ids.sql
/* why: collection and knowledge-base filters are resolved once per call into the ids of the
   documents in scope (null = no filter), so the chunk scans test one `= any(...)` instead of
   joining per row; ids of another tenant simply match nothing (client_id is part of every
   predicate). security invoker: runs under the caller's RLS. */
create or replace function private.scoped_document_ids(
  client_id uuid,
  collection_ids uuid[],
  knowledge_base_ids uuid[]
)
returns uuid[]
language sql
stable
security invoker
set search_path = ''
as $$
  select case
    when scoped_document_ids.collection_ids is null
     and scoped_document_ids.knowledge_base_ids is null then null
    else coalesce(
      (select pg_catalog.array_agg(d.id)
         from public.documents as d
         join public.knowledge_collections as k
           on k.client_id = d.client_id and k.id = d.collection_id
        where d.client_id = scoped_document_ids.client_id
          and (scoped_document_ids.collection_ids is null
               or d.collection_id = any (scoped_document_ids.collection_ids))
          and (scoped_document_ids.knowledge_base_ids is null
               or k.knowledge_base_id = any (scoped_document_ids.knowledge_base_ids))),
      '{}'::uuid[])
  end
$$;

comment on function private.scoped_document_ids(uuid, uuid[], uuid[]) is
  'Ids of the client''s documents inside the given collections and/or knowledge bases; null when neither filter is given.';

revoke all on function private.scoped_document_ids(uuid, uuid[], uuid[]) from public;
grant execute on function private.scoped_document_ids(uuid, uuid[], uuid[]) to authenticated, service_role;
-- <<< sql/functions/private.scoped_document_ids.sql

-- >>> sql/functions/private.text_search_regconfig.sql
/* why: text_search_config columns are `text` (a check constraint lists the languages), because
   pg_upgrade refuses tables with `regconfig` columns (they store catalog OIDs), which would block
   a Supabase major-version upgrade. This one function maps a language name to the text search
   configuration for the generated column document_chunks.fts and for any query that must parse
   text the way a knowledge base does. Immutable, like to_tsvector(regconfig, text), so a
   generated column may call it; the names resolve in pg_catalog only (search_path = ''), and an
   unknown name yields null (the columns' check constraints never let one in). */
create or replace function private.text_search_regconfig(config text)
returns regconfig
language sql
immutable
strict
parallel safe
security invoker
set search_path = ''
as $$
  select case text_search_regconfig.config
           when 'simple' then 'pg_catalog.simple'::pg_catalog.regconfig
           when 'portuguese' then 'pg_catalog.portuguese'::pg_catalog.regconfig
           when 'english' then 'pg_catalog.english'::pg_catalog.regconfig
           when 'spanish' then 'pg_catalog.spanish'::pg_catalog.regconfig
         end
$$;

comment on function private.text_search_regconfig(text) is
  'The text search configuration (regconfig) of a supported language name: simple, portuguese, english or spanish; null for any other name.';

revoke all on function private.text_search_regconfig(text) from public;
grant execute on function private.text_search_regconfig(text) to authenticated, service_role;
-- <<< sql/functions/private.text_search_regconfig.sql
