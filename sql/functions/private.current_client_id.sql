/* why: every tenant policy needs "the caller's client, if the caller may do this". One helper
   answers both questions so each policy is a single indexable equality:
       client_id = (select private.current_client_id('member'))
   It returns null (so the policy matches nothing) when the caller has no JWT, no profile row, no
   client, a client that is not active, or a role below `min_role` (viewer < member < admin).
   Revocation is decided here too, at once and whatever the JWT still says: an auth user who is
   banned (auth.users.banned_until in the future) or soft-deleted (auth.users.deleted_at set), or
   whose profile is suspended (public.users.status), gets null as well.
   Cost: one statement of three primary-key probes (users, clients, auth.users by the same id),
   run once per statement because policies wrap it as `(select ...)` (an initplan).
   security definer: it must read public.users, public.clients and auth.users, whose own RLS or
   privileges would otherwise stop it; it reads only the caller's own rows (auth.uid()), so it
   discloses nothing. It lives in the unexposed schema `private`, pins search_path = '' and is
   executable only by the API roles that evaluate policies and column defaults. Stable.
   users.role is the enum public.user_role (0015); its rank is taken from its text.
   language plpgsql (0018, issue 12): a security definer SQL function is never inlined, and before
   PostgreSQL 18 it re-plans its query on every call; PL/pgSQL keeps the plan for the session
   (forced generic: the one parameter is the caller's id, and re-planning locked every index of
   auth.users).
   Memoised per statement (0022, issue 12): a search evaluated it five times per request (the
   wrapper's tenant check, then one initplan per table under RLS: registry, chunks, documents,
   collections), 35 us each, about 0.18 ms of a 0.5 ms search of a 100-row tenant. The first call
   of a statement runs the lookup and keeps the answer (client and role, or none) in the
   transaction-local setting renum.caller, stamped with the caller's id and the statement's start
   (statement_timestamp()); later calls of the same statement with the same caller reuse it (4 us).
   So revocation still applies from the next statement, a change of claims is a different
   caller, and the role check (min_role) is made on every call. The stamp is not a secret: a session
   that can run arbitrary SQL can forge renum.caller exactly as it can forge request.jwt.claims, the
   setting auth.uid() trusts; API requests (PostgREST, renum_db) cannot set either. Transaction-local,
   so a pooled connection never carries it to the next request. */
create or replace function private.current_client_id(min_role text default 'viewer')
returns uuid
language plpgsql
stable
security definer
set search_path = ''
set plan_cache_mode = 'force_generic_plan'
as $$
declare
  caller uuid := auth.uid();
  stamp text;
  cached text;
  own uuid;
  own_role text;
begin
  if caller is null then
    return null;
  end if;
  stamp := caller::text || '@' || pg_catalog.statement_timestamp()::text;
  cached := pg_catalog.current_setting('renum.caller', true);
  if cached is not null and pg_catalog.split_part(cached, '/', 1) = stamp then
    own := nullif(pg_catalog.split_part(cached, '/', 2), '')::uuid;
    own_role := pg_catalog.split_part(cached, '/', 3);
  else
    select u.client_id, u.role::text
      into own, own_role
      from public.users as u
      join public.clients as c on c.id = u.client_id
      join auth.users as a on a.id = u.id
     where u.id = caller
       and u.status = 'active'
       and c.status = 'active'
       and a.deleted_at is null
       and (a.banned_until is null or a.banned_until <= pg_catalog.now());
    -- An assignment, not PERFORM: a simple expression skips the executor start of a query.
    cached := pg_catalog.set_config('renum.caller',
                                    stamp || '/' || coalesce(own::text, '') || '/'
                                    || coalesce(own_role, ''),
                                    true);
  end if;
  if own is null
     or pg_catalog.array_position(array['viewer', 'member', 'admin'], own_role)
        < pg_catalog.array_position(array['viewer', 'member', 'admin'], min_role)
     or pg_catalog.array_position(array['viewer', 'member', 'admin'], min_role) is null then
    return null;
  end if;
  return own;
end;
$$;

comment on function private.current_client_id(text) is
  'The calling user''s client id if the client is active, the user is neither banned, soft-deleted nor suspended, and the user''s role is at least min_role (viewer < member < admin); null otherwise. Used by RLS policies and client_id defaults.';

revoke all on function private.current_client_id(text) from public, anon, authenticated, service_role;
grant execute on function private.current_client_id(text) to authenticated, service_role;
