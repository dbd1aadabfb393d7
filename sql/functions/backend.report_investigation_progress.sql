/* why: the worker reports progress while it runs; every update reaches the owner's browser
   through the supabase_realtime publication. progress is required (22004) and may not decrease
   (RNI02, from the workflow trigger); the other arguments are optional and a null keeps the
   stored value. `results` replaces the stored array (send the partial results found so far),
   so a retried call is idempotent. Reporting on an investigation that is not processing fails
   with RNI03, which also tells a worker that the owner cancelled it. Same verb as
   backend.report_agent_execution_progress. security invoker. */
create or replace function backend.report_investigation_progress(
  investigation_id uuid,
  progress double precision,
  current_phase text default null,
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
begin
  if report_investigation_progress.progress is null then
    raise exception using errcode = '22004', message = 'progress is required';
  end if;
  return private.update_investigation(
    report_investigation_progress.investigation_id,
    progress => report_investigation_progress.progress,
    current_phase => report_investigation_progress.current_phase,
    results => report_investigation_progress.results,
    anomalies_found => report_investigation_progress.anomalies_found,
    total_records_analyzed => report_investigation_progress.total_records_analyzed
  );
end;
$$;

comment on function backend.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) is
  'Worker (service_role): report progress (0..1, never decreasing) of a processing investigation, and optionally its current phase, partial results (replacing the stored array), anomalies found and records analyzed; null keeps a value. Returns the row. Errors: PT404 unknown id, RNI03 not processing (e.g. cancelled), RNI02 progress decreased, 23514 progress outside [0, 1] or results not an array, 22004 progress null.';

revoke all on function backend.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) from public, anon, authenticated, service_role;
grant execute on function backend.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) to service_role;
