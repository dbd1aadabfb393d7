/* why: the worker reports progress while it runs; every update reaches the owner's browser
   through the supabase_realtime publication. progress is required and may not decrease (RNI02,
   from the workflow trigger); the other arguments are optional and a null keeps the stored value.
   `results` replaces the stored array (send the partial results found so far), so a retried call
   is idempotent. Reporting on an investigation that is not processing fails with RNI03, which
   also tells a worker that the owner cancelled it. The row is locked before its status is read.
   Granted to service_role only.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.report_investigation_progress(
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
declare
  current_status text;
  result public.investigations;
begin
  if report_investigation_progress.progress is null then
    raise exception using errcode = '22004', message = 'progress is required';
  end if;
  select i.status into current_status
    from public.investigations as i
   where i.id = report_investigation_progress.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found',
                                  report_investigation_progress.investigation_id);
  end if;
  if current_status <> 'processing' then
    raise exception using
      errcode = 'RNI03',
      message = pg_catalog.format('investigation %s is %s, not processing: its progress cannot change',
                                  report_investigation_progress.investigation_id, current_status),
      hint = case when current_status = 'pending' then 'Call start_investigation first.'
                  else 'The investigation has ended; stop working on it.' end;
  end if;
  update public.investigations as i
     set progress = report_investigation_progress.progress,
         current_phase = coalesce(report_investigation_progress.current_phase, i.current_phase),
         results = coalesce(report_investigation_progress.results, i.results),
         anomalies_found = coalesce(report_investigation_progress.anomalies_found, i.anomalies_found),
         total_records_analyzed = coalesce(report_investigation_progress.total_records_analyzed,
                                           i.total_records_analyzed)
   where i.id = report_investigation_progress.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) is
  'Worker (service_role): report progress (0..1, never decreasing) of a processing investigation, and optionally its current phase, partial results (replacing the stored array), anomalies found and records analyzed; null keeps a value. Returns the row. Errors: PT404 unknown id, RNI03 not processing (e.g. cancelled), RNI02 progress decreased, 23514 progress outside [0, 1] or results not an array, 22004 progress null.';

revoke all on function public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) from public, anon, authenticated, service_role;
grant execute on function public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) to service_role;
