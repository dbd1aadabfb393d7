/* why: the worker finishes an investigation: processing -> completed with its summary and
   confidence score (and, optionally, the final results and counts; null keeps a value). The
   workflow trigger sets progress to 1 and completed_at. Only a processing investigation can be
   completed (RNI01), checked under a row lock. Granted to service_role only.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.complete_investigation(
  investigation_id uuid,
  summary text default null,
  confidence_score double precision default null,
  results jsonb default null,
  anomalies_found integer default null,
  total_records_analyzed bigint default null
)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  current_status text;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = complete_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', complete_investigation.investigation_id);
  end if;
  if current_status <> 'processing' then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to completed',
                                  complete_investigation.investigation_id, current_status),
      hint = 'Only a processing investigation can be completed.';
  end if;
  update public.investigations as i
     set status = 'completed',
         summary = coalesce(complete_investigation.summary, i.summary),
         confidence_score = coalesce(complete_investigation.confidence_score, i.confidence_score),
         results = coalesce(complete_investigation.results, i.results),
         anomalies_found = coalesce(complete_investigation.anomalies_found, i.anomalies_found),
         total_records_analyzed = coalesce(complete_investigation.total_records_analyzed,
                                           i.total_records_analyzed)
   where i.id = complete_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) is
  'Worker (service_role): complete a processing investigation with its summary and confidence score (0..1), optionally final results and counts (null keeps a value). progress becomes 1 and completed_at is set by the database. Returns the row. Errors: PT404 unknown id, RNI01 not processing, 23514 confidence_score outside [0, 1].';

revoke all on function public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) from public, anon, authenticated, service_role;
grant execute on function public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) to service_role;
