/* why: the worker finishes an investigation: processing -> completed with its summary and
   confidence score (and, optionally, the final results and counts; null keeps a value). The
   workflow trigger sets progress to 1 and completed_at, and refuses completing a row that is
   not processing (RNI01). security invoker. */
create or replace function backend.complete_investigation(
  investigation_id uuid,
  summary text default null,
  confidence_score double precision default null,
  results jsonb default null,
  anomalies_found integer default null,
  total_records_analyzed bigint default null
)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.update_investigation(
    complete_investigation.investigation_id,
    'completed',
    summary => complete_investigation.summary,
    confidence_score => complete_investigation.confidence_score,
    results => complete_investigation.results,
    anomalies_found => complete_investigation.anomalies_found,
    total_records_analyzed => complete_investigation.total_records_analyzed
  )
$$;

comment on function backend.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) is
  'Worker (service_role): complete a processing investigation with its summary and confidence score (0..1), optionally final results and counts (null keeps a value). progress becomes 1 and completed_at is set by the database. Returns the row. Errors: PT404 unknown id, RNI01 not processing, 23514 confidence_score outside [0, 1].';

revoke all on function backend.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) from public, anon, authenticated, service_role;
grant execute on function backend.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) to service_role;
