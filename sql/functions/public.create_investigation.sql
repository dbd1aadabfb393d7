/* why: the RPC a signed-in user calls to ask for an investigation
   (`supabase.rpc('create_investigation', {query, data_source, filters, anomaly_types})`). The row
   is owned by the caller: user_id and client_id come from the column defaults (auth.uid() and the
   caller's active client), and the owner-only insert policy re-checks both. It starts pending;
   the worker picks it up with start_investigation. Only `authenticated` may execute it: the
   backend (service_role) has no user of its own and inserts into public.investigations with
   client_id and user_id instead (the workflow trigger applies there too).
   security invoker: the caller's own privileges and RLS decide. */
create or replace function public.create_investigation(
  query text,
  data_source text,
  filters jsonb default '{}'::jsonb,
  anomaly_types jsonb default '[]'::jsonb,
  session_id text default null
)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  insert into public.investigations (query, data_source, filters, anomaly_types, session_id)
  values (
    create_investigation.query,
    create_investigation.data_source,
    coalesce(create_investigation.filters, '{}'::jsonb),
    coalesce(create_investigation.anomaly_types, '[]'::jsonb),
    create_investigation.session_id
  )
  returning *
$$;

comment on function public.create_investigation(text, text, jsonb, jsonb, text) is
  'Create an investigation owned by the caller, in the caller''s client, status pending. filters: a JSON object; anomaly_types: a JSON array. Returns the new row. Errors: 42501 caller without an active client (or not a signed-in user), 23514 empty query/data_source or wrong JSON types.';

revoke all on function public.create_investigation(text, text, jsonb, jsonb, text) from public, anon, authenticated, service_role;
grant execute on function public.create_investigation(text, text, jsonb, jsonb, text) to authenticated;
