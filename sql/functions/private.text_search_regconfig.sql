/* why: text_search_config columns are `text` (a check constraint lists the languages), because
   pg_upgrade refuses tables with `regconfig` columns (they store catalog OIDs), which would block
   a Supabase major-version upgrade. This one function maps a language name to the text search
   configuration for the generated column document_chunks.fts and for any query that must parse
   text the way a knowledge base does. Immutable, like to_tsvector(regconfig, text), so a
   generated column may call it; the names resolve in pg_catalog only (search_path = ''), and an
   unknown name yields null (the columns' check constraints never let one in).
   language plpgsql (0033): a SQL function with a SET clause is never inlined, and before
   PostgreSQL 18 its body was planned again in every statement that called it (hybrid_search,
   once per language of the tenant); PL/pgSQL evaluates the CASE as a simple expression. */
create or replace function private.text_search_regconfig(config text)
returns regconfig
language plpgsql
immutable
strict
parallel safe
security invoker
set search_path = ''
as $$
begin
  return case text_search_regconfig.config
           when 'simple' then 'pg_catalog.simple'::pg_catalog.regconfig
           when 'portuguese' then 'pg_catalog.portuguese'::pg_catalog.regconfig
           when 'english' then 'pg_catalog.english'::pg_catalog.regconfig
           when 'spanish' then 'pg_catalog.spanish'::pg_catalog.regconfig
         end;
end;
$$;

comment on function private.text_search_regconfig(text) is
  'The text search configuration (regconfig) of a supported language name: simple, portuguese, english or spanish; null for any other name.';

revoke all on function private.text_search_regconfig(text) from public;
grant execute on function private.text_search_regconfig(text) to authenticated, service_role;
