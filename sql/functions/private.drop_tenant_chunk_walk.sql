/* why: the counterpart of private.create_tenant_chunk_walk, for demotion (renum-db tenant-index
   demote): drops the client's walk functions (its own graph's and, since 0028, its second
   graph's) once the registry says 'retiring', so no search calls them any more. Idempotent.
   security invoker, executable only by the operator role. */
create or replace function private.drop_tenant_chunk_walk(client_id uuid)
returns void
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  execute pg_catalog.format(
    'drop function if exists private.%I(extensions.vector, integer, uuid[], jsonb)',
    'nearest_chunks_t_' || pg_catalog.replace(client_id::text, '-', ''));
  execute pg_catalog.format(
    'drop function if exists private.%I(extensions.vector, integer, uuid[], jsonb)',
    'nearest_chunks_h_' || pg_catalog.replace(client_id::text, '-', ''));
end;
$$;

comment on function private.drop_tenant_chunk_walk(uuid) is
  'Drops private.nearest_chunks_t_<client hex> and private.nearest_chunks_h_<client hex>, the walk functions of a demoted client. Called by the demotion procedure.';

revoke all on function private.drop_tenant_chunk_walk(uuid) from public, anon, authenticated, service_role;
