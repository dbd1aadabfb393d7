/* why: `renum-db mcp --user <email|id>` runs an MCP server for one user over stdio. The server
   logs in as the dedicated role renum_mcp, which must not read auth.users or public.users (it
   can only become authenticated/anon, and then RLS shows it its own tenant at most). This
   function is the one narrow thing it may ask: "which user is this email or id?". It answers
   with the user's id, and only for a user who can sign in: an auth.users row that is not
   deleted and not banned now, with an active public.users profile. Anything else (unknown
   email, a deleted, banned or suspended user, a profile-less auth user) gives null, so the server refuses to start
   without learning why. It never returns the email, the tenant or the role.
   security definer: it reads auth.users and public.users past their privileges and RLS; it
   lives in the unexposed schema `private`, pins search_path = '' and is executable by
   renum_mcp only (not by any API role). Stable: it reads only. */
create or replace function private.resolve_mcp_user(identifier text)
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select u.id
    from auth.users as u
    join public.users as p on p.id = u.id
   where (case
            when resolve_mcp_user.identifier ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then u.id = resolve_mcp_user.identifier::uuid
            else pg_catalog.lower(u.email) = pg_catalog.lower(pg_catalog.btrim(resolve_mcp_user.identifier))
          end)
     and p.status = 'active'
     and u.deleted_at is null
     and (u.banned_until is null or u.banned_until <= pg_catalog.now())
   limit 1
$$;

comment on function private.resolve_mcp_user(text) is
  'The id of the user with this email (case-insensitive) or id, if that user can sign in (not deleted, not banned, an active profile); null otherwise. For the MCP login role renum_mcp only.';

revoke all on function private.resolve_mcp_user(text) from public;
grant execute on function private.resolve_mcp_user(text) to renum_mcp;
